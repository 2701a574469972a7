//! The HTTP API over real TCP and WebSocket connections to a running daemon: what each role may
//! and may not do, team scoping, browser sessions (cookie, CSRF, Origin), log follow, exec with
//! a pty, live events, the history after a restart, bad input, TLS, and schemathesis against
//! the served OpenAPI document.

use std::time::Duration;

use berth_tests::api::{bearer, next_json, wait_for};
use berth_tests::{isolate_network, Daemon, ADMIN_PASSWORD, ADMIN_TOKEN};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn ids(list: &Value) -> Vec<String> {
    list.as_array().expect("a list").iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

/// Creates a container (as `token`) running `cmd`; its id.
fn create(daemon: &Daemon, token: &str, name: &str, cmd: &[&str]) -> String {
    let r = daemon.call(
        Some(token),
        "POST",
        "/api/v1/containers",
        Some(json!({"image": "busybox", "name": name, "cmd": cmd})),
    );
    assert_eq!(r.status, 201, "create {name}: {}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

#[test]
fn roles_and_teams() {
    let daemon = Daemon::with_busybox();
    let vera = daemon.user_with_token("vera", "viewer", None);
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    let lone = daemon.user_with_token("lone", "operator", None);

    // No credentials: only the public routes.
    assert_eq!(daemon.call(None, "GET", "/_ping", None).status, 200);
    assert_eq!(daemon.call(None, "GET", "/api/v1/version", None).status, 200);
    assert_eq!(daemon.call(None, "GET", "/api/v1/openapi.json", None).status, 200);
    let anonymous = daemon.call(None, "GET", "/api/v1/containers", None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert!(anonymous.header("www-authenticate").is_some());
    assert!(anonymous.json()["message"].as_str().unwrap().contains("authentication required"));
    let forged = daemon.call(Some("berth_0000"), "GET", "/api/v1/containers", None);
    assert_eq!(forged.status, 401);
    assert_eq!(forged.json()["message"], "invalid API token");
    let malformed = daemon.http("GET", "/api/v1/containers", &[("Authorization", "Basic YTpi")], b"");
    assert_eq!(malformed.status, 401);

    // Operators of team blue run containers; the container is blue's.
    let web = create(&daemon, &otto, "web", &["sleep", "300"]);
    assert_eq!(daemon.call(Some(&otto), "POST", "/api/v1/containers/web/start", None).status, 204);
    assert_eq!(ids(&daemon.call(Some(&otto), "GET", "/api/v1/containers", None).json()), vec![web.clone()]);
    // An operator in no team cannot create anything (it would belong to nobody).
    let orphan = daemon.call(
        Some(&lone),
        "POST",
        "/api/v1/containers",
        Some(json!({"image": "busybox", "cmd": ["true"]})),
    );
    assert_eq!(orphan.status, 403, "{}", orphan.text());
    assert!(orphan.text().contains("in no team"));

    // Team red sees nothing of blue's, and cannot act on it: the answer is the same as for a
    // container that does not exist.
    assert_eq!(
        ids(&daemon.call(Some(&olga), "GET", "/api/v1/containers?all=1", None).json()),
        Vec::<String>::new()
    );
    for (method, path) in [
        ("GET", "/api/v1/containers/web"),
        ("POST", "/api/v1/containers/web/stop"),
        ("DELETE", "/api/v1/containers/web?force=1"),
        ("GET", "/api/v1/containers/web/logs"),
    ] {
        let r = daemon.call(Some(&olga), method, path, None);
        assert_eq!(r.status, 404, "{method} {path} as red: {}", r.text());
        assert_eq!(r.json()["message"], "No such container: web");
    }
    let red_own = create(&daemon, &olga, "redbox", &["true"]);
    assert_eq!(
        ids(&daemon.call(Some(&olga), "GET", "/api/v1/containers?all=1", None).json()),
        vec![red_own.clone()]
    );

    // A viewer reads but does not act; outside any team, sees nothing.
    assert_eq!(daemon.call(Some(&vera), "GET", "/api/v1/containers", None).json(), json!([]));
    let denied = daemon.call(Some(&vera), "POST", "/api/v1/containers", Some(json!({"image": "busybox"})));
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.json()["message"],
        "permission denied: vera has the role viewer, POST /api/v1/containers needs operator"
    );
    // In team blue, the viewer sees blue's container, inspects it, but may not stop it or read
    // its output.
    assert_eq!(daemon.call(Some(ADMIN_TOKEN), "PUT", "/api/v1/teams/blue/members/vera", None).status, 200);
    assert_eq!(ids(&daemon.call(Some(&vera), "GET", "/api/v1/containers", None).json()), vec![web.clone()]);
    assert_eq!(daemon.call(Some(&vera), "GET", "/api/v1/containers/web", None).status, 200);
    assert_eq!(daemon.call(Some(&vera), "POST", "/api/v1/containers/web/stop", None).status, 403);
    assert_eq!(daemon.call(Some(&vera), "GET", "/api/v1/containers/web/logs", None).status, 403);
    assert_eq!(daemon.call(Some(&vera), "GET", "/api/v1/containers/web/top", None).status, 200);

    // Operators do not manage users, teams, tokens, registry credentials, or prune.
    for (method, path) in [
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/teams"),
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/containers/prune"),
        ("POST", "/api/v1/registry/logout"),
        ("GET", "/api/v1/history/audit"),
    ] {
        assert_eq!(daemon.call(Some(&otto), method, path, Some(json!({}))).status, 403, "{method} {path}");
    }
    // A token never has more power than its user: an operator's admin token is refused.
    let escalate = daemon.call(
        Some(ADMIN_TOKEN),
        "POST",
        "/api/v1/tokens",
        Some(json!({"user": "otto", "name": "up", "role": "admin"})),
    );
    assert_eq!(escalate.status, 400, "{}", escalate.text());

    // Admins see and act on all teams' containers; the unix socket is root.
    let all = ids(&daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/containers?all=1", None).json());
    assert!(all.contains(&web) && all.contains(&red_own), "{all:?}");
    assert!(daemon.berth(&["ps", "-a", "-q", "--no-trunc"]).stdout.contains(&web));
    let users = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/users", None).json();
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "lone", "olga", "otto", "vera"]);

    // The operator stops their own container; the audit log has who did it.
    assert_eq!(daemon.call(Some(&otto), "POST", "/api/v1/containers/web/stop?t=1", None).status, 204);
    let audit =
        daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?user=otto&method=POST", None).json();
    let paths: Vec<&str> =
        audit["items"].as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"/api/v1/containers/web/stop"), "{paths:?}");
    let refused = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?user=vera", None).json();
    assert!(refused["items"].as_array().unwrap().iter().any(|a| a["status"] == 403), "{refused}");

    // A revoked token stops working at once.
    let tokens = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/tokens", None).json();
    let otto_token = tokens.as_array().unwrap().iter().find(|t| t["user"] == "otto").unwrap()["id"].clone();
    assert_eq!(
        daemon.call(Some(ADMIN_TOKEN), "DELETE", &format!("/api/v1/tokens/{otto_token}"), None).status,
        204
    );
    assert_eq!(daemon.call(Some(&otto), "GET", "/api/v1/containers", None).status, 401);
    // The last admin cannot be removed.
    assert_eq!(daemon.call(Some(ADMIN_TOKEN), "DELETE", "/api/v1/users/admin", None).status, 409);
}

#[test]
fn cli_uses_berth_token_over_tcp() {
    let daemon = Daemon::start();
    let viewer = daemon.user_with_token("vic", "viewer", None);
    let out = berth_tests::berth_at(&daemon.tcp_host(), &["images"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // As a viewer: reads pass, writes are refused with the daemon's message.
    std::env::set_var("BERTH_TOKEN", &viewer);
    let listed = berth_tests::berth_at(&daemon.tcp_host(), &["images", "-q"], None);
    let tagged = berth_tests::berth_at(&daemon.tcp_host(), &["tag", "a", "b"], None);
    std::env::set_var("BERTH_TOKEN", "berth_wrong");
    let wrong = berth_tests::berth_at(&daemon.tcp_host(), &["images"], None);
    std::env::remove_var("BERTH_TOKEN");
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_ne!(tagged.code, 0);
    assert!(tagged.stderr.contains("permission denied: vic has the role viewer"), "{}", tagged.stderr);
    assert_ne!(wrong.code, 0);
    assert!(wrong.stderr.contains("invalid API token"), "{}", wrong.stderr);
    // The admin CLI over the socket (root).
    daemon.berth(&["admin", "team", "create", "ops"]).ok();
    daemon.berth(&["admin", "team", "add", "ops", "vic"]).ok();
    let teams = daemon.berth(&["admin", "team", "ls"]).ok();
    assert!(teams.stdout.lines().any(|l| l.starts_with("ops") && l.contains("vic")), "{}", teams.stdout);
    let token = daemon.berth(&["admin", "token", "create", "vic", "--name", "ci"]).ok();
    assert!(token.stdout.trim().starts_with("berth_"), "{}", token.stdout);
    let bad = daemon.berth(&["admin", "user", "create", "no/slash"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("invalid user name"), "{}", bad.stderr);
}

/// `Set-Cookie` → `name=value`.
fn session_cookie(response: &berth_tests::HttpResponse) -> String {
    let cookie = response.header("set-cookie").expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "no Secure flag without TLS: {cookie}");
    cookie.split(';').next().unwrap().to_string()
}

#[test]
fn browser_session_with_csrf_and_origin() {
    let daemon = Daemon::start();
    let json_ct = ("Content-Type", "application/json");
    let wrong = daemon.http(
        "POST",
        "/api/v1/auth/login",
        &[json_ct, ("Authorization", "none")],
        br#"{"username":"admin","password":"nope-nope"}"#,
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["message"], "wrong user name or password");
    let nobody = daemon.http(
        "POST",
        "/api/v1/auth/login",
        &[json_ct, ("Authorization", "none")],
        br#"{"username":"nobody","password":"nope-nope"}"#,
    );
    assert_eq!(nobody.json()["message"], "wrong user name or password");
    let login = daemon.http(
        "POST",
        "/api/v1/auth/login",
        &[json_ct, ("Authorization", "none")],
        format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#).as_bytes(),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let cookie = session_cookie(&login);
    let csrf = login.json()["csrf_token"].as_str().unwrap().to_string();
    let as_browser = |method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]| {
        let mut headers = vec![("Authorization", "none"), ("Cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        daemon.http(method, path, &headers, body)
    };
    let me = as_browser("GET", "/api/v1/auth/session", &[], b"");
    assert_eq!(me.json()["user"], "admin");
    assert_eq!(me.json()["via"], "session");
    assert_eq!(me.json()["csrf_token"], csrf.as_str());
    // Mutating calls need the CSRF token in its header.
    let body = br#"{"name":"green"}"#;
    let no_csrf = as_browser("POST", "/api/v1/teams", &[json_ct], body);
    assert_eq!(no_csrf.status, 403);
    assert!(no_csrf.text().contains("x-csrf-token"), "{}", no_csrf.text());
    let bad_csrf = as_browser("POST", "/api/v1/teams", &[json_ct, ("X-CSRF-Token", "0000")], body);
    assert_eq!(bad_csrf.status, 403);
    let ok = as_browser("POST", "/api/v1/teams", &[json_ct, ("X-CSRF-Token", &csrf)], body);
    assert_eq!(ok.status, 201, "{}", ok.text());
    // Another site's page cannot use the cookie, even with the token.
    let cross = as_browser(
        "POST",
        "/api/v1/teams",
        &[json_ct, ("X-CSRF-Token", &csrf), ("Origin", "http://evil.example")],
        br#"{"name":"evil"}"#,
    );
    assert_eq!(cross.status, 403);
    // WebSockets with the cookie: the Origin must be ours and present.
    let ours = format!("http://127.0.0.1:{}", daemon.port());
    let host = format!("127.0.0.1:{}", daemon.port());
    assert!(daemon
        .ws("/api/v1/ws/events", &[("Cookie", &cookie), ("Origin", &ours), ("Host", &host)])
        .is_ok());
    let (status, _) = daemon
        .ws("/api/v1/ws/events", &[("Cookie", &cookie)])
        .err()
        .unwrap_or_else(|| panic!("refused without Origin"));
    assert_eq!(status, 403);
    let (status, _) = daemon
        .ws("/api/v1/ws/events", &[("Cookie", &cookie), ("Origin", "http://evil.example")])
        .err()
        .unwrap_or_else(|| panic!("refused from another origin"));
    assert_eq!(status, 403);
    // Logout ends the session.
    assert_eq!(as_browser("POST", "/api/v1/auth/logout", &[], b"").status, 204);
    assert_eq!(as_browser("GET", "/api/v1/auth/session", &[], b"").status, 401);
}

#[test]
fn logs_follow_events_and_stats_over_websockets() {
    let daemon = Daemon::with_busybox();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    let mut events = daemon.ws_as(&otto, "/api/v1/ws/events");
    let mut red_events = daemon.ws_as(&olga, "/api/v1/ws/events");

    let id = create(
        &daemon,
        &otto,
        "talker",
        &["sh", "-c", "for i in 1 2 3; do echo line$i; done; sleep 2; echo late"],
    );
    let created = wait_for(&mut events, Duration::from_secs(10), |m| m["type"] == "event");
    assert_eq!(created["event"]["action"], "create");
    assert!(created["event"]["message"].as_str().unwrap().contains(&id));

    // Attach the log before the start: tail of nothing, then follow.
    assert_eq!(daemon.call(Some(&otto), "POST", "/api/v1/containers/talker/start", None).status, 204);
    let mut logs = daemon.ws_as(&otto, "/api/v1/ws/containers/talker/logs?follow=1&tail=all");
    let mut lines = Vec::new();
    loop {
        let m = next_json(&mut logs).expect("the log stream ends with an end message");
        match m["type"].as_str().unwrap() {
            "logs" => {
                for e in m["entries"].as_array().unwrap() {
                    lines.push(e["line"].as_str().unwrap().trim_end().to_string());
                }
            }
            "end" => break,
            other => panic!("unexpected {other}: {m}"),
        }
    }
    assert_eq!(lines, ["line1", "line2", "line3", "late"]);
    assert!(next_json(&mut logs).is_none(), "closed after the end message");

    // The tail of a finished log, without follow.
    let mut tail = daemon.ws_as(&otto, "/api/v1/ws/containers/talker/logs?tail=1");
    let m = next_json(&mut tail).unwrap();
    assert_eq!(m["entries"][0]["line"], "late\n");
    assert_eq!(next_json(&mut tail).unwrap()["type"], "end");

    let started = wait_for(&mut events, Duration::from_secs(10), |m| m["event"]["action"] == "start");
    assert_eq!(started["event"]["subject"], "talker");
    let died = wait_for(&mut events, Duration::from_secs(10), |m| m["event"]["action"] == "die");
    assert!(died["event"]["message"].as_str().unwrap().contains("exitCode=0"), "{died}");

    // Team red saw none of it: its first message is its own container's.
    create(&daemon, &olga, "redone", &["true"]);
    let first = wait_for(&mut red_events, Duration::from_secs(10), |m| m["type"] == "event");
    assert_eq!(first["event"]["subject"], "redone");

    // Stats: samples while it runs, `end` when it stops.
    create(&daemon, &otto, "sleeper", &["sleep", "3"]);
    assert_eq!(daemon.call(Some(&otto), "POST", "/api/v1/containers/sleeper/start", None).status, 204);
    let mut stats = daemon.ws_as(&otto, "/api/v1/ws/containers/sleeper/stats");
    let sample = next_json(&mut stats).unwrap();
    assert_eq!(sample["type"], "stats", "{sample}");
    let end = wait_for(&mut stats, Duration::from_secs(15), |m| m["type"] == "end");
    assert_eq!(end["reason"], "the container stopped");

    // Bad requests are refused before the upgrade.
    let (status, body) =
        daemon.ws("/api/v1/ws/containers/nope/logs", &[("Authorization", &bearer(&otto))]).err().unwrap();
    assert_eq!(status, 404, "{body}");
    let (status, _) = daemon
        .ws("/api/v1/ws/containers/talker/logs?tail=x", &[("Authorization", &bearer(&otto))])
        .err()
        .unwrap();
    assert_eq!(status, 400);
    let (status, _) = daemon.ws("/api/v1/ws/events", &[]).err().unwrap();
    assert_eq!(status, 401);
    daemon.remove_all_containers();
}

#[test]
fn exec_with_a_pty_is_audited() {
    let daemon = Daemon::with_busybox();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    create(&daemon, &otto, "box", &["sleep", "300"]);
    assert_eq!(daemon.call(Some(&otto), "POST", "/api/v1/containers/box/start", None).status, 204);
    let mut exec = daemon.ws_as(&otto, "/api/v1/containers/box/exec?cmd=sh&tty=1&stdin=1");
    exec.send(Message::Text(r#"{"type":"resize","cols":100,"rows":30}"#.into())).unwrap();
    exec.send(Message::Binary(b"stty size; tty; exit 3\n".to_vec().into())).unwrap();
    let mut output = Vec::new();
    let code = loop {
        match exec.read().expect("reading the exec stream") {
            Message::Binary(data) => output.extend_from_slice(&data),
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "exit" {
                    break v["code"].as_i64().unwrap();
                }
            }
            Message::Close(_) => {
                panic!("closed before the exit; output: {}", String::from_utf8_lossy(&output))
            }
            _ => {}
        }
    };
    let output = String::from_utf8_lossy(&output);
    assert_eq!(code, 3, "{output}");
    assert!(output.contains("30 100"), "{output}");
    assert!(output.contains("/dev/pts/"), "{output}");
    let audit = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?method=EXEC", None).json();
    let row = &audit["items"][0];
    assert_eq!(row["user"], "otto");
    assert_eq!(row["container"], "box");
    assert_eq!(row["command"], "sh");
    // The row is closed when the session ends (just after the exit message).
    let ended = (0..50).find_map(|_| {
        let audit = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?method=EXEC", None).json();
        let ended = audit["items"][0]["ended"].as_str().map(String::from);
        if ended.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        ended
    });
    assert!(
        ended.is_some(),
        "the exec session's audit row was not closed: {}",
        daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?method=EXEC", None).text()
    );
    let row =
        &daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?method=EXEC", None).json()["items"][0];
    assert_eq!(row["exit_code"], 3, "{row}");
    // A client that detaches (closes the socket) while the process runs: the row is closed
    // with the exit code when the process ends.
    let mut detached =
        daemon.ws_as(&otto, "/api/v1/containers/box/exec?cmd=sh&cmd=-c&cmd=sleep%201%3B%20exit%205");
    detached.close(None).unwrap();
    drop(detached);
    let row = (0..100)
        .find_map(|_| {
            let audit =
                daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?method=EXEC", None).json();
            let row = audit["items"][0].clone();
            if row["ended"].is_null() {
                std::thread::sleep(Duration::from_millis(100));
                return None;
            }
            Some(row)
        })
        .expect("the detached session's row was closed");
    assert_eq!(row["command"], "sh -c sleep 1; exit 5", "{row}");
    assert_eq!(row["exit_code"], 5, "{row}");
    // A viewer may not exec.
    let vera = daemon.user_with_token("vera", "viewer", Some("blue"));
    let (status, _) =
        daemon.ws("/api/v1/containers/box/exec?cmd=sh", &[("Authorization", &bearer(&vera))]).err().unwrap();
    assert_eq!(status, 403);
    daemon.remove_all_containers();
}

#[test]
fn history_survives_a_restart() {
    let mut daemon = Daemon::with_busybox();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    for (name, code) in [("ha", 0), ("hb", 7), ("hc", 7)] {
        create(&daemon, &otto, name, &["sh", "-c", &format!("exit {code}")]);
        assert_eq!(
            daemon.call(Some(&otto), "POST", &format!("/api/v1/containers/{name}/start"), None).status,
            204
        );
        let waited = daemon.call(Some(&otto), "POST", &format!("/api/v1/containers/{name}/wait"), None);
        assert_eq!(waited.status, 200, "{}", waited.text());
    }
    let finished = |daemon: &Daemon, query: &str| {
        // The die event is recorded asynchronously: poll a little.
        for _ in 0..50 {
            let page =
                daemon.call(Some(&otto), "GET", &format!("/api/v1/history/containers{query}"), None).json();
            if page["items"].as_array().is_some_and(|i| !i.is_empty()) {
                return page;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no finished containers for {query}");
    };
    let sevens = finished(&daemon, "?exit_code=7");
    let names: Vec<&str> =
        sevens["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hc", "hb"]);

    daemon.restart();
    // A token made before the restart still works, and the history is all there, in pages.
    let page1 = daemon.call(Some(&otto), "GET", "/api/v1/history/containers?limit=2", None).json();
    assert_eq!(page1["items"].as_array().unwrap().len(), 2, "{page1}");
    let before = page1["next_before"].as_i64().expect("a next page");
    let page2 = daemon
        .call(Some(&otto), "GET", &format!("/api/v1/history/containers?limit=2&before={before}"), None)
        .json();
    assert_eq!(page2["items"][0]["name"], "ha");
    assert_eq!(page2["items"][0]["exit_code"], 0);
    assert!(page2["next_before"].is_null());
    let events = daemon.call(Some(&otto), "GET", "/api/v1/history/events?action=die&limit=10", None).json();
    assert_eq!(events["items"].as_array().unwrap().len(), 3, "{events}");
    let audit = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?user=otto", None).json();
    assert!(audit["items"].as_array().unwrap().len() >= 9, "{audit}");
    // Another team's member sees none of blue's history.
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    assert_eq!(
        daemon.call(Some(&olga), "GET", "/api/v1/history/containers", None).json()["items"],
        json!([])
    );
    daemon.remove_all_containers();
}

#[test]
fn bad_input_is_a_clear_4xx() {
    let daemon = Daemon::start();
    let admin = Some(ADMIN_TOKEN);
    let json_ct = [("Content-Type", "application/json")];
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", "/api/v1/users", b"{not json".to_vec(), 400, "parse the request body as JSON"),
        (
            "POST",
            "/api/v1/users",
            br#"{"name":"x","role":"viewer","extra":1}"#.to_vec(),
            400,
            "unknown field",
        ),
        ("POST", "/api/v1/users", br#"{"name":"x","role":"king"}"#.to_vec(), 400, "unknown variant"),
        ("POST", "/api/v1/users", br#"{"name":"../x","role":"viewer"}"#.to_vec(), 400, "invalid user name"),
        (
            "POST",
            "/api/v1/users",
            br#"{"name":"x","role":"viewer","password":"short"}"#.to_vec(),
            400,
            "8 to 1024",
        ),
        ("POST", "/api/v1/teams", vec![b' '; 2 * 1024 * 1024], 413, ""),
        ("GET", "/api/v1/history/events?limit=0", Vec::new(), 400, "limit must be between"),
        ("GET", "/api/v1/history/events?limit=x", Vec::new(), 400, "is not a number"),
        ("GET", "/api/v1/history/events?since=yesterday", Vec::new(), 400, "RFC 3339"),
        ("GET", "/api/v1/history/events?colour=red", Vec::new(), 400, "unknown query parameter"),
        ("GET", "/api/v1/history/builds/abc", Vec::new(), 400, "invalid build id"),
        ("DELETE", "/api/v1/tokens/99", Vec::new(), 404, "no such token"),
        ("PUT", "/api/v1/teams/nope/members/admin", Vec::new(), 404, "no such team"),
        ("GET", "/api/v1/ws/progress/dance", Vec::new(), 400, ""),
    ];
    for (method, path, body, status, needle) in cases {
        let r = daemon.http(method, path, &json_ct, &body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(r.text().contains(needle), "{method} {path}: {}", r.text());
    }
    let dup = daemon.call(admin, "POST", "/api/v1/teams", Some(json!({"name": "t"})));
    assert_eq!(dup.status, 201);
    let dup = daemon.call(admin, "POST", "/api/v1/teams", Some(json!({"name": "t"})));
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["message"], "team \"t\" already exists");
}

/// A build context holding only this Dockerfile.
fn dockerfile_context(dockerfile: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes()).unwrap();
    tar.into_inner().unwrap()
}

/// The JSON lines of a streamed answer.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn images_belong_to_teams() {
    let daemon = Daemon::with_busybox();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    let vera = daemon.user_with_token("vera", "viewer", Some("blue"));
    let rootfs = std::fs::read(berth_tests::busybox_rootfs(daemon.dir())).unwrap();
    let raw = |token: &str, method: &str, path: &str, body: &[u8]| {
        let auth = bearer(token);
        daemon.http(
            method,
            path,
            &[("Authorization", &auth), ("Content-Type", "application/octet-stream")],
            body,
        )
    };

    // Blue imports an image (a body over the JSON limit: the middleware must not buffer it).
    let imported = raw(&otto, "POST", "/api/v1/images/import?reference=bluebox:1", &rootfs);
    assert_eq!(imported.status, 200, "{}", imported.text());
    let blue_id = imported.json()["id"].as_str().unwrap().to_string();
    // busybox came in over the unix socket: no team owns it, every member sees and runs it.
    let tags = |token: &str| -> Vec<String> {
        let list = daemon.call(Some(token), "GET", "/api/v1/images", None).json();
        let mut tags: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["repo_tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()))
            .collect();
        tags.sort();
        tags
    };
    assert_eq!(tags(&otto), ["docker.io/library/bluebox:1", "docker.io/library/busybox:latest"]);
    assert_eq!(tags(&vera), ["docker.io/library/bluebox:1", "docker.io/library/busybox:latest"]);
    assert_eq!(tags(&olga), ["docker.io/library/busybox:latest"]);
    assert_eq!(tags(ADMIN_TOKEN).len(), 2);

    // Red cannot see, run, tag, push, remove or read the history of blue's image: the same
    // answer as for an image that does not exist.
    for (method, path, body) in [
        ("GET", "/api/v1/images/bluebox:1", None),
        ("GET", "/api/v1/images/bluebox:1/history", None),
        ("POST", "/api/v1/images/bluebox:1/tag", Some(json!({"target": "mine:1"}))),
        ("DELETE", "/api/v1/images/bluebox:1", None),
        ("POST", "/api/v1/containers", Some(json!({"image": "bluebox:1", "cmd": ["true"]}))),
        ("POST", "/api/v1/containers", Some(json!({"image": blue_id.clone(), "cmd": ["true"]}))),
        ("POST", "/api/v1/images/push", Some(json!({"reference": "bluebox:1"}))),
    ] {
        let r = daemon.call(Some(&olga), method, path, body);
        assert_eq!(r.status, 404, "{method} {path} as red: {}", r.text());
        assert!(r.json()["message"].as_str().unwrap().starts_with("No such image: "), "{}", r.text());
    }
    assert_eq!(daemon.call(Some(&olga), "GET", "/api/v1/images/save?name=bluebox:1", None).status, 404);
    // Blue runs its own image and the shared one; red runs the shared one.
    create(&daemon, &otto, "bluerun", &["true"]);
    let r = daemon.call(
        Some(&otto),
        "POST",
        "/api/v1/containers",
        Some(json!({"image": "bluebox:1", "cmd": ["true"]})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    create(&daemon, &olga, "redrun", &["true"]);
    // A shared image is read-only to members: they inspect it, admins change it.
    assert_eq!(daemon.call(Some(&olga), "GET", "/api/v1/images/busybox", None).status, 200);
    for (method, path, body) in [
        ("POST", "/api/v1/images/busybox/tag", Some(json!({"target": "mine:1"}))),
        ("DELETE", "/api/v1/images/busybox", None),
    ] {
        let r = daemon.call(Some(&otto), method, path, body);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert!(r.text().contains("shared (no team owns it)"), "{}", r.text());
    }
    let r = daemon.call(
        Some(ADMIN_TOKEN),
        "POST",
        "/api/v1/images/busybox/tag",
        Some(json!({"target": "base:1"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // A member cannot move a shared or another team's name onto their image.
    for target in ["busybox:latest", "base:1"] {
        let r =
            daemon.call(Some(&otto), "POST", "/api/v1/images/bluebox:1/tag", Some(json!({"target": target})));
        assert_eq!(r.status, 403, "{target}: {}", r.text());
        assert!(r.text().contains("names an image your teams do not own"), "{}", r.text());
    }
    assert_eq!(tags(&olga), ["docker.io/library/base:1", "docker.io/library/busybox:latest"]);
    // Blue tags and removes its own.
    let r = daemon.call(
        Some(&otto),
        "POST",
        "/api/v1/images/bluebox:1/tag",
        Some(json!({"target": "bluebox:2"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(daemon.call(Some(&otto), "GET", "/api/v1/images/bluebox:1/history", None).status, 200);

    // A viewer reads but does not import, load, pull, push, build, save or run.
    assert_eq!(daemon.call(Some(&vera), "GET", "/api/v1/images/bluebox:1", None).status, 200);
    for (method, path) in [
        ("POST", "/api/v1/images/import"),
        ("POST", "/api/v1/images/load"),
        ("POST", "/api/v1/images/pull"),
        ("POST", "/api/v1/images/push"),
        ("POST", "/api/v1/build"),
        ("GET", "/api/v1/images/save?name=bluebox:1"),
        ("POST", "/api/v1/images/bluebox:1/tag"),
        ("DELETE", "/api/v1/images/bluebox:1"),
    ] {
        let r = raw(&vera, method, path, b"");
        assert_eq!(r.status, 403, "{method} {path} as a viewer: {}", r.text());
        assert!(r.text().contains("has the role viewer"), "{}", r.text());
    }
    // Registry credentials are the admins'.
    for path in ["/api/v1/registry/login", "/api/v1/registry/logout"] {
        let r = daemon.call(Some(&otto), "POST", path, Some(json!({"server": "127.0.0.1:1"})));
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
    let r = daemon.call(
        Some(ADMIN_TOKEN),
        "POST",
        "/api/v1/registry/logout",
        Some(json!({"server": "127.0.0.1:1"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "Not logged in to 127.0.0.1:1");
    // Nothing listens on port 1: the registry cannot be reached, which is not the daemon's fault.
    let r = daemon.call(
        Some(ADMIN_TOKEN),
        "POST",
        "/api/v1/registry/login",
        Some(json!({"server": "127.0.0.1:1", "username": "u", "password": "p"})),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("127.0.0.1:1"), "{}", r.text());

    // A load records the loader's team: red loads blue's saved image and may then use it.
    let saved = raw(&otto, "GET", "/api/v1/images/save?name=bluebox:1", b"");
    assert_eq!(saved.status, 200, "{}", saved.text());
    assert_eq!(daemon.call(Some(&olga), "GET", &format!("/api/v1/images/{blue_id}"), None).status, 404);
    let loaded = raw(&olga, "POST", "/api/v1/images/load", &saved.body);
    assert_eq!(loaded.status, 200, "{}", loaded.text());
    assert_eq!(loaded.json()["loaded"][0]["id"], blue_id.as_str());
    assert_eq!(daemon.call(Some(&olga), "GET", &format!("/api/v1/images/{blue_id}"), None).status, 200);
    // The same content as a shared image, loaded by a member, leaves it shared.
    let base = raw(&otto, "GET", "/api/v1/images/save?name=busybox", b"");
    assert_eq!(base.status, 200, "{}", base.text());
    assert_eq!(raw(&otto, "POST", "/api/v1/images/load", &base.body).status, 200);
    assert_eq!(daemon.call(Some(&olga), "GET", "/api/v1/images/busybox", None).status, 200);
    assert_eq!(daemon.call(Some(&otto), "DELETE", "/api/v1/images/busybox", None).status, 403);
    // A removed image belongs to nobody any more: loaded again, it is the loader's only.
    let removed = daemon.call(Some(&olga), "DELETE", &format!("/api/v1/images/{blue_id}?force=1"), None);
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(raw(&olga, "POST", "/api/v1/images/load", &saved.body).status, 200);
    assert_eq!(daemon.call(Some(&olga), "GET", &format!("/api/v1/images/{blue_id}"), None).status, 200);
    assert_eq!(daemon.call(Some(&otto), "GET", &format!("/api/v1/images/{blue_id}"), None).status, 404);

    // A build's image is the builder's team's.
    let built = raw(
        &otto,
        "POST",
        "/api/v1/build?t=bluebuilt:1",
        &dockerfile_context("FROM busybox\nLABEL team=blue\n"),
    );
    assert_eq!(built.status, 200, "{}", built.text());
    let events = json_lines(&built.text());
    assert_eq!(events.last().unwrap()["type"], "built", "{}", built.text());
    assert_eq!(daemon.call(Some(&otto), "GET", "/api/v1/images/bluebuilt:1", None).status, 200);
    assert_eq!(daemon.call(Some(&olga), "GET", "/api/v1/images/bluebuilt:1", None).status, 404);

    // Refusals of mutating calls are in the audit log.
    let audit = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/history/audit?user=olga", None).json();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["status"] == 404 && a["path"] == "/api/v1/containers"),
        "{audit}"
    );
    daemon.remove_all_containers();
}

#[test]
fn stacks_belong_to_teams() {
    // The stack's default network, if the engine makes one, stays in this test's namespace.
    isolate_network();
    let daemon = Daemon::with_busybox();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    let vera = daemon.user_with_token("vera", "viewer", Some("blue"));
    let compose =
        "services:\n  web:\n    image: busybox\n    command: [\"sleep\", \"300\"]\n    network_mode: none\n";
    let up = daemon.call(
        Some(&otto),
        "POST",
        "/api/v1/stacks/shop/up",
        Some(json!({"compose_file": compose, "working_dir": daemon.dir().to_str().unwrap()})),
    );
    assert_eq!(up.status, 200, "{}", up.text());
    let last = json_lines(&up.text()).pop().unwrap();
    assert_ne!(last["action"], "Error", "{}", up.text());
    let names = |token: &str| -> Vec<String> {
        let list = daemon.call(Some(token), "GET", "/api/v1/stacks", None).json();
        list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
    };
    // The stack, and its containers, are blue's.
    assert_eq!(names(&otto), ["shop"]);
    assert_eq!(names(&vera), ["shop"]);
    assert_eq!(names(&olga), Vec::<String>::new());
    assert_eq!(names(ADMIN_TOKEN), ["shop"]);
    assert_eq!(
        daemon.call(Some(&otto), "GET", "/api/v1/containers", None).json().as_array().unwrap().len(),
        1
    );
    assert_eq!(daemon.call(Some(&vera), "GET", "/api/v1/stacks/shop", None).status, 200);
    // Over TCP a member's stack reaches no further into the host than a member's container.
    for (service, what) in [
        ("    volumes: [\"/:/host\"]\n", "a bind mount of the host path"),
        ("    cap_add: [SYS_ADMIN]\n", "added capabilities"),
        ("    network_mode: host\n", "the host's network"),
        ("    build: .\n", "a build from a directory of the daemon's host"),
    ] {
        let file = format!("services:\n  x:\n    image: busybox\n{service}");
        let r = daemon.call(
            Some(&olga),
            "POST",
            "/api/v1/stacks/sneaky/up",
            Some(json!({"compose_file": file, "working_dir": daemon.dir().to_str().unwrap()})),
        );
        assert_eq!(r.status, 403, "{file}: {}", r.text());
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(what) && message.contains("service x:"), "{message}");
    }
    // Red cannot see or act on it; a viewer reads but does not act.
    for (method, path, body) in [
        ("GET", "/api/v1/stacks/shop", None),
        ("POST", "/api/v1/stacks/shop/stop", None),
        ("POST", "/api/v1/stacks/shop/down", Some(json!({}))),
        ("POST", "/api/v1/stacks/shop/up", Some(json!({"compose_file": compose}))),
    ] {
        let r = daemon.call(Some(&olga), method, path, body);
        assert_eq!(r.status, 404, "{method} {path} as red: {}", r.text());
        assert_eq!(r.json()["message"], "no such stack: shop");
    }
    let (status, _) =
        daemon.ws("/api/v1/ws/stacks/shop/logs", &[("Authorization", &bearer(&olga))]).err().unwrap();
    assert_eq!(status, 404);
    let r = daemon.call(Some(&vera), "POST", "/api/v1/stacks/shop/stop", None);
    assert_eq!(r.status, 403, "{}", r.text());
    let (status, _) =
        daemon.ws("/api/v1/ws/stacks/shop/logs", &[("Authorization", &bearer(&vera))]).err().unwrap();
    assert_eq!(status, 403);
    // Nor can red reach blue's containers through a network's connect or disconnect.
    let web = daemon.call(Some(&otto), "GET", "/api/v1/containers", None).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for op in ["connect", "disconnect"] {
        let r = daemon.call(
            Some(&olga),
            "POST",
            &format!("/api/v1/networks/none/{op}"),
            Some(json!({"container": web})),
        );
        assert_eq!(r.status, 404, "{op}: {}", r.text());
        assert_eq!(r.json()["message"], format!("No such container: {web}"));
    }
    // The progress WebSocket runs a stack operation as the caller: its lines come as
    // `stack_progress` messages, then `end`; red's attempt on blue's stack is refused.
    let mut otto_events = daemon.ws_as(&otto, "/api/v1/ws/events");
    let mut olga_events = daemon.ws_as(&olga, "/api/v1/ws/events");
    let mut stop = daemon.ws_as(&otto, "/api/v1/ws/progress/stacks/shop/stop?t=1");
    stop.send(Message::Text("{}".into())).unwrap();
    let mut actions = Vec::new();
    loop {
        let m = next_json(&mut stop).expect("a message before the end");
        match m["type"].as_str().unwrap() {
            "stack_progress" => actions.push(m["event"]["action"].as_str().unwrap().to_string()),
            "end" => break,
            other => panic!("unexpected {other}: {m}"),
        }
    }
    assert!(actions.contains(&"Stopped".to_string()) && actions.last().unwrap() == "Done", "{actions:?}");
    // The stack's events reach its team only: red's next event is about its own container.
    let stopped = wait_for(&mut otto_events, Duration::from_secs(20), |m| m["event"]["type"] == "stack");
    assert_eq!((&stopped["event"]["action"], &stopped["event"]["subject"]), (&json!("stop"), &json!("shop")));
    create(&daemon, &olga, "redprobe", &["true"]);
    let first = wait_for(&mut olga_events, Duration::from_secs(20), |m| m["type"] == "event");
    assert_eq!(first["event"]["type"], "container", "{first}");
    let mut refused = daemon.ws_as(&olga, "/api/v1/ws/progress/stacks/shop/start");
    refused.send(Message::Text("{}".into())).unwrap();
    let m = next_json(&mut refused).unwrap();
    assert_eq!(m, json!({"type": "error", "message": "no such stack: shop"}));
    let down = daemon.call(Some(&otto), "POST", "/api/v1/stacks/shop/down", Some(json!({})));
    assert_eq!(down.status, 200, "{}", down.text());
    assert_eq!(names(&otto), Vec::<String>::new());
    daemon.remove_all_containers();
}

#[test]
fn bad_input_on_every_kind_of_route_is_a_clear_4xx() {
    // Networks the daemon might create stay in this test's namespace.
    isolate_network();
    let daemon = Daemon::with_busybox();
    let json_ct = [("Content-Type", "application/json")];
    let big = {
        let mut b = br#"{"reference":""#.to_vec();
        b.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
        b.extend(br#""}"#);
        b
    };
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        // JSON bodies: not an object, malformed, unknown fields, wrong types, too big.
        ("POST", "/api/v1/images/pull", b"[]".to_vec(), 400, "must be a JSON object, not an array"),
        ("POST", "/api/v1/images/pull", br#"["busybox"]"#.to_vec(), 400, "must be a JSON object"),
        ("POST", "/api/v1/users", br#"["x","admin",null]"#.to_vec(), 400, "must be a JSON object"),
        ("POST", "/api/v1/volumes", b"[]".to_vec(), 400, "must be a JSON object"),
        ("POST", "/api/v1/registry/logout", b"null".to_vec(), 400, "must be a JSON object, not null"),
        ("POST", "/api/v1/images/pull", b"{not json".to_vec(), 400, "parse the request body as JSON"),
        (
            "POST",
            "/api/v1/images/pull",
            br#"{"reference":"x","colour":1}"#.to_vec(),
            400,
            "unknown field `colour`",
        ),
        ("POST", "/api/v1/images/push", br#"{"reference":5}"#.to_vec(), 400, "invalid type"),
        ("POST", "/api/v1/images/pull", big, 413, ""),
        ("POST", "/api/v1/networks", br#"{"nmae":"n"}"#.to_vec(), 400, "unknown field `nmae`"),
        ("POST", "/api/v1/containers", br#"{"image":"busybox","cmd":"true"}"#.to_vec(), 400, "invalid type"),
        ("POST", "/api/v1/stacks/shop/up", br#"{"compose_file":1}"#.to_vec(), 400, "invalid type"),
        // Invalid names and references.
        (
            "POST",
            "/api/v1/images/pull",
            br#"{"reference":"bad ref!"}"#.to_vec(),
            400,
            "invalid reference format",
        ),
        ("POST", "/api/v1/images/push", br#"{"reference":"a::b"}"#.to_vec(), 400, "invalid reference format"),
        (
            "POST",
            "/api/v1/images/busybox/tag",
            br#"{"target":"no spaces allowed"}"#.to_vec(),
            400,
            "invalid reference format",
        ),
        ("POST", "/api/v1/build?t=bad%20tag", Vec::new(), 400, "invalid reference format"),
        (
            "POST",
            "/api/v1/build?t=a%40sha256%3A0000000000000000000000000000000000000000000000000000000000000000",
            Vec::new(),
            400,
            "",
        ),
        (
            "POST",
            "/api/v1/registry/login",
            br#"{"server":"127.0.0.1:1","username":"","password":"p"}"#.to_vec(),
            400,
            "username is empty",
        ),
        ("POST", "/api/v1/volumes", br#"{"name":"../escape"}"#.to_vec(), 400, ""),
        ("POST", "/api/v1/volumes", br#"{"name":"a/b"}"#.to_vec(), 400, ""),
        ("POST", "/api/v1/networks", br#"{"name":"a/b"}"#.to_vec(), 400, ""),
        (
            "POST",
            "/api/v1/stacks/Bad!Name/up",
            br#"{"compose_file":"services: {}"}"#.to_vec(),
            400,
            "invalid project name",
        ),
        ("POST", "/api/v1/stacks/shop/up", br#"{"compose_file":"services: ["}"#.to_vec(), 400, ""),
        ("POST", "/api/v1/containers", br#"{"image":"busybox","name":"../x"}"#.to_vec(), 400, ""),
        // Query strings: unknown parameters, values of the wrong kind.
        ("POST", "/api/v1/build?colour=red", Vec::new(), 400, "unknown query parameter \"colour\""),
        ("POST", "/api/v1/build?nocache=maybe", Vec::new(), 400, "is not a boolean"),
        ("DELETE", "/api/v1/images/busybox?force=perhaps", Vec::new(), 400, "is not a boolean"),
        ("GET", "/api/v1/history/builds/null", Vec::new(), 400, "invalid build id"),
        ("GET", "/api/v1/volumes?colour=red", Vec::new(), 400, "unknown query parameter"),
        ("POST", "/api/v1/stacks/shop/stop?t=-1", Vec::new(), 400, ""),
        // Paths that do not decode, and operations that do not exist.
        ("GET", "/api/v1/images/%ff%fe", Vec::new(), 400, ""),
        ("POST", "/api/v1/stacks/shop/frobnicate", Vec::new(), 404, ""),
        ("GET", "/api/v1/nothing-here", Vec::new(), 404, "page not found"),
        ("PUT", "/api/v1/images", Vec::new(), 405, "method not allowed"),
    ];
    for (method, path, body, status, needle) in cases {
        let r = daemon.http(method, path, &json_ct, &body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        let message = r.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: {}", r.text()))
            .to_string();
        assert!(!message.is_empty() && message.contains(needle), "{method} {path}: {message}");
    }
    // Bodies that are not what they claim: a JSON route without the JSON content type, an
    // import or load of something that is not an archive.
    let r = daemon.http(
        "POST",
        "/api/v1/images/pull",
        &[("Content-Type", "text/plain")],
        br#"{"reference":"x"}"#,
    );
    assert_eq!(r.status, 415, "{}", r.text());
    for path in ["/api/v1/images/import", "/api/v1/images/load"] {
        let r =
            daemon.http("POST", path, &[("Content-Type", "application/octet-stream")], b"this is not a tar");
        assert!(r.status == 400, "{path}: {} {}", r.status, r.text());
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
    }
    // A build context that is not a tar: the stream's last line says so.
    let r = daemon.http("POST", "/api/v1/build", &[("Content-Type", "application/x-tar")], b"not a tar");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_lines(&r.text()).last().unwrap()["type"], "error", "{}", r.text());
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
    assert!(std::fs::read_dir(daemon.root()).unwrap().all(|e| e.unwrap().file_name() != "escape"));
}

#[test]
fn only_admins_reach_into_the_host() {
    let daemon = Daemon::with_busybox();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    let host = daemon.dir().to_str().unwrap().to_string();
    for (config, what) in [
        (
            json!({"image": "busybox", "mounts": [{"type": "bind", "source": host, "target": "/host"}]}),
            "a bind mount of the host path",
        ),
        (json!({"image": "busybox", "cap_add": ["SYS_ADMIN"]}), "added capabilities"),
        (json!({"image": "busybox", "network": "host"}), "the host's network"),
        (json!({"image": "busybox", "privileged": true}), "a privileged container"),
        (
            json!({"image": "busybox", "devices": [{"path_on_host": "/dev/null", "path_in_container": "/dev/x", "cgroup_permissions": "rwm"}]}),
            "a host device",
        ),
        (json!({"image": "busybox", "security_opt": ["seccomp=unconfined"]}), "a seccomp profile"),
    ] {
        let r = daemon.call(Some(&otto), "POST", "/api/v1/containers", Some(config.clone()));
        assert_eq!(r.status, 403, "{config}: {}", r.text());
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(what) && message.ends_with("needs the admin role"), "{message}");
        let r = daemon.call(Some(ADMIN_TOKEN), "POST", "/api/v1/containers", Some(config.clone()));
        assert_eq!(r.status, 201, "{config} as admin: {}", r.text());
    }
    // Volumes and tmpfs are the container's own.
    let r = daemon.call(
        Some(&otto),
        "POST",
        "/api/v1/containers",
        Some(json!({"image": "busybox", "mounts": [{"type": "tmpfs", "target": "/scratch"}]})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // Another team's container's network namespace is out of reach, one's own is not.
    create(&daemon, &otto, "bluebox", &["sleep", "300"]);
    let join = json!({"image": "busybox", "network": "container:bluebox"});
    let r = daemon.call(Some(&olga), "POST", "/api/v1/containers", Some(join.clone()));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["message"], "No such container: bluebox");
    let r = daemon.call(Some(&otto), "POST", "/api/v1/containers", Some(join));
    assert_eq!(r.status, 201, "{}", r.text());
    daemon.remove_all_containers();
}

#[test]
fn tls_when_a_certificate_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let daemon = Daemon::start_with_args(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let curl = |extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert", cert_path.to_str().unwrap()])
            .args(["--resolve", &format!("localhost:{}:127.0.0.1", daemon.port())])
            .args(extra)
            .output()
            .expect("running curl");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let base = format!("https://localhost:{}", daemon.port());
    let (code, body, err) = curl(&[
        &format!("{base}/api/v1/auth/session"),
        "-H",
        &format!("Authorization: Bearer {ADMIN_TOKEN}"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["user"], "admin");
    // The session cookie is Secure on TLS.
    let (code, _, err) = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Content-Type: application/json",
        "--data",
        &format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#),
        &format!("{base}/api/v1/auth/login"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (_, headers, _) = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Content-Type: application/json",
        "--data",
        &format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#),
        &format!("{base}/api/v1/auth/login"),
    ]);
    let cookie =
        headers.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie")).expect("set-cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP on the TLS port gets nothing.
    let plain = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://127.0.0.1:{}/_ping", daemon.port())])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("OK"));
}

#[test]
fn first_start_generates_and_prints_an_admin_password() {
    let daemon = Daemon::start();
    // The test daemon's password comes from BERTH_ADMIN_PASSWORD: nothing is generated.
    assert!(!daemon.log().contains("created the admin account"));
    let dir = tempfile::tempdir().unwrap();
    let port = berth_tests::free_port();
    let mut child = std::process::Command::new(berth_tests::berth_binary())
        .args(["serve", "--root"])
        .arg(dir.path().join("root"))
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        // No default bridge: this daemon runs in the host's network namespace.
        .args(["--bridge", "none"])
        .env_remove("BERTH_ADMIN_PASSWORD")
        .env_remove("BERTH_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
    let password = first.trim().rsplit(' ').next().unwrap().to_string();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
    let _ = child.wait();
    assert!(first.starts_with("berth: created the admin account \"admin\" with the password: "), "{first}");
    assert!(password.len() >= 16, "{password}");
}

/// Runs schemathesis against the daemon's document with the test's admin token; its output.
fn schemathesis(daemon: &Daemon, extra: &[&str]) -> std::process::Output {
    let st = std::path::Path::new("/opt/berth-test-venv/bin/st");
    assert!(st.exists(), "schemathesis is missing: run scripts/setup.sh --test");
    std::process::Command::new(st)
        .args(["run", &format!("http://127.0.0.1:{}/api/v1/openapi.json", daemon.port())])
        .arg("--experimental=openapi-3.1")
        .args(["--hypothesis-max-examples", "30", "--hypothesis-seed", "1"])
        .args(["--request-timeout", "20000", "--generation-allow-x00=false"])
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        // Schemathesis would put control characters in the session cookie, which hyper refuses
        // before any route sees the request (with an empty 400): the token is the credential.
        .args(["--set-cookie", "berth_session=none"])
        // Not the calls that would take the test's own access away (delete the token or the
        // admin, demote the admin, log out).
        .args(["--exclude-method", "DELETE", "--exclude-method", "PATCH"])
        .args(extra)
        .output()
        .expect("running schemathesis")
}

#[test]
fn schemathesis_finds_no_server_errors() {
    // Every route runs, the registry and build ones included: in this namespace a pull, push
    // or login of whatever name schemathesis makes up reaches no registry.
    isolate_network();
    let daemon = Daemon::with_busybox();
    let out =
        // Login, search, tag listing and a remote manifest answer a registry that cannot be
        // reached with 502 (the gateway's error, documented): in this namespace no registry can
        // be reached.
        schemathesis(
            &daemon,
            &[
                "--checks",
                "all",
                "--exclude-path-regex",
                "/auth/logout$|/registry/login$|/images/search$|/registry/tags$|/registry/manifest$",
            ],
        );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for path in ["/api/v1/images/pull", "/api/v1/images/push", "/api/v1/build", "/api/v1/registry/logout"] {
        assert!(stdout.contains(path), "schemathesis did not test {path}:\n{stdout}");
    }
    // Registry login checks the credentials with the registry, and offline there is none: its
    // answer is then 502 (documented: an upstream that cannot be reached), which the
    // not_a_server_error check would count. Every other check runs, and a 500 is still caught
    // (it is not a documented status of the route).
    let out = schemathesis(
        &daemon,
        &[
            "--checks",
            "all",
            "--exclude-checks",
            "not_a_server_error",
            "--include-path-regex",
            "/registry/login$",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis (login) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("/api/v1/registry/login"), "{stdout}");
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
    daemon.remove_all_containers();
}

#[test]
fn progress_websocket_runs_the_operation_as_the_caller() {
    let daemon = Daemon::start();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    // A refused pull: the error of the REST call, as the stream's last message.
    let mut pull = daemon.ws_as(&otto, "/api/v1/ws/progress/pull");
    pull.send(Message::Text(r#"{"reference":"bad ref!"}"#.into())).unwrap();
    let m = next_json(&mut pull).unwrap();
    assert_eq!(m["type"], "error", "{m}");
    assert!(m["message"].as_str().unwrap().contains("invalid reference format"), "{m}");
    // Malformed requests get the REST route's own 400 message.
    let mut bad = daemon.ws_as(&otto, "/api/v1/ws/progress/push");
    bad.send(Message::Text(r#"{"nope":1}"#.into())).unwrap();
    let m = next_json(&mut bad).unwrap();
    assert_eq!(m["type"], "error");
    assert!(m["message"].as_str().unwrap().contains("unknown field"), "{m}");
    // A viewer may not open one.
    let vera = daemon.user_with_token("vera", "viewer", Some("blue"));
    let (status, _) =
        daemon.ws("/api/v1/ws/progress/pull", &[("Authorization", &bearer(&vera))]).err().unwrap();
    assert_eq!(status, 403);
}

#[test]
fn builds_use_only_their_teams_images() {
    let daemon = Daemon::with_busybox();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    let build = |token: &str, tag: &str, dockerfile: &str| -> Value {
        let auth = bearer(token);
        let r = daemon.http(
            "POST",
            &format!("/api/v1/build?t={tag}"),
            &[("Authorization", &auth), ("Content-Type", "application/x-tar")],
            &dockerfile_context(dockerfile),
        );
        assert_eq!(r.status, 200, "{dockerfile}: {}", r.text());
        json_lines(&r.text()).pop().unwrap()
    };
    // Blue's private image, built from the shared busybox.
    let blue = build(&otto, "bluebase:1", "FROM busybox\nRUN echo blue > /team\n");
    assert_eq!(blue["type"], "built", "{blue}");
    // Red cannot build on it, by name or by ID, nor copy out of it: as if it did not exist.
    let blue_id = blue["id"].as_str().unwrap();
    for dockerfile in [
        "FROM bluebase:1\n".to_string(),
        format!("FROM {blue_id}\n"),
        "FROM busybox\nCOPY --from=bluebase:1 /team /stolen\n".to_string(),
    ] {
        let last = build(&olga, "redtry:1", &dockerfile);
        assert_eq!(last["type"], "error", "{dockerfile}: {last}");
        assert!(last["message"].as_str().unwrap().contains("No such image"), "{dockerfile}: {last}");
    }
    assert_eq!(daemon.call(Some(&olga), "GET", "/api/v1/images/redtry:1", None).status, 404);
    // Blue builds on its own, red on the shared one, an admin on anything.
    assert_eq!(build(&otto, "bluenext:1", "FROM bluebase:1\nLABEL next=1\n")["type"], "built");
    let copy = "FROM busybox\nCOPY --from=bluebase:1 /team /copied\n";
    assert_eq!(build(&otto, "bluecopy:1", copy)["type"], "built");
    assert_eq!(build(&olga, "redbase:1", "FROM busybox\nLABEL team=red\n")["type"], "built");
    assert_eq!(build(ADMIN_TOKEN, "adminnext:1", "FROM bluebase:1\nLABEL admin=1\n")["type"], "built");
}

#[test]
fn stack_env_files_are_for_admins() {
    // The stack's default network, if the engine makes one, stays in this test's namespace.
    isolate_network();
    let daemon = Daemon::with_busybox();
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    let secret = daemon.dir().join("host-secret.env");
    std::fs::write(&secret, "SECRET=from-the-host\n").unwrap();
    let working_dir = daemon.dir().to_str().unwrap().to_string();
    let file = |env_file: &str| {
        format!(
            "x-env: &env\n  env_file: {env_file}\nservices:\n  x:\n    <<: *env\n    image: busybox\n    \
             command: [\"sleep\", \"300\"]\n    network_mode: none\n"
        )
    };
    // A path, absolute or relative to the working directory, a list, and a merge key: refused
    // before the daemon reads the file.
    for env_file in [secret.to_str().unwrap(), "host-secret.env", "[host-secret.env]", "/nonexistent.env"] {
        let r = daemon.call(
            Some(&olga),
            "POST",
            "/api/v1/stacks/sneaky/up",
            Some(json!({"compose_file": file(env_file), "working_dir": working_dir})),
        );
        assert_eq!(r.status, 403, "{env_file}: {}", r.text());
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("service x: env_file") && message.ends_with("needs the admin role"),
            "{message}"
        );
    }
    assert_eq!(daemon.call(Some(&olga), "GET", "/api/v1/containers", None).json(), json!([]));
    // `.env` text sent by the CLI (interpolation) is the member's own and stays allowed.
    let plain = "services:\n  x:\n    image: busybox\n    command: [\"sleep\", \"300\"]\n    \
                 network_mode: none\n    environment: [\"V=${V}\"]\n";
    let r = daemon.call(
        Some(&olga),
        "POST",
        "/api/v1/stacks/fine/up",
        Some(json!({"compose_file": plain, "env_file": "V=1\n", "working_dir": working_dir})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(json_lines(&r.text()).pop().unwrap()["action"], "Error", "{}", r.text());
    // An admin's stack reads it.
    let r = daemon.call(
        Some(ADMIN_TOKEN),
        "POST",
        "/api/v1/stacks/admin/up",
        Some(json!({"compose_file": file("host-secret.env"), "working_dir": working_dir})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(json_lines(&r.text()).pop().unwrap()["action"], "Error", "{}", r.text());
    let list = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/containers?all=1", None).json();
    let admin =
        list.as_array().unwrap().iter().find(|c| c["name"].as_str().unwrap().starts_with("admin")).cloned();
    let id = admin.expect("the admin stack's container")["id"].as_str().unwrap().to_string();
    let inspect = daemon.call(Some(ADMIN_TOKEN), "GET", &format!("/api/v1/containers/{id}"), None).json();
    assert!(inspect.to_string().contains("SECRET=from-the-host"), "{inspect}");
    for (token, stack) in [(olga.as_str(), "fine"), (ADMIN_TOKEN, "admin")] {
        let down = daemon.call(Some(token), "POST", &format!("/api/v1/stacks/{stack}/down"), Some(json!({})));
        assert_eq!(down.status, 200, "{}", down.text());
    }
    daemon.remove_all_containers();
}

#[test]
fn volumes_belong_to_teams() {
    // The stacks' default networks, if the engine makes them, stay in this test's namespace.
    isolate_network();
    let daemon = Daemon::with_busybox();
    let otto = daemon.user_with_token("otto", "operator", Some("blue"));
    let olga = daemon.user_with_token("olga", "operator", Some("red"));
    let vera = daemon.user_with_token("vera", "viewer", Some("blue"));
    let working_dir = daemon.dir().to_str().unwrap().to_string();
    let volume = |token: &str, name: &str| {
        daemon.call(Some(token), "POST", "/api/v1/volumes", Some(json!({ "name": name })))
    };
    let mounting = |token: &str, mounts: Value| {
        daemon.call(
            Some(token),
            "POST",
            "/api/v1/containers",
            Some(json!({"image": "busybox", "cmd": ["true"], "mounts": mounts})),
        )
    };
    let names = |token: &str| -> Vec<String> {
        let list = daemon.call(Some(token), "GET", "/api/v1/volumes", None).json();
        let mut names: Vec<String> =
            list.as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
        names.sort();
        names
    };

    // An admin's volume is shared; blue makes one explicitly, one on demand and an anonymous one.
    assert_eq!(volume(ADMIN_TOKEN, "sharedvol").status, 201);
    assert_eq!(volume(&otto, "bluevol").status, 201);
    let r = mounting(
        &otto,
        json!([{"type": "volume", "source": "bluedemand", "target": "/d"}, {"source": "", "target": "/anon"}]),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let blue_container = r.json()["id"].as_str().unwrap().to_string();
    let inspect =
        daemon.call(Some(&otto), "GET", &format!("/api/v1/containers/{blue_container}"), None).json();
    let anonymous = inspect["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/anon")
        .expect("the anonymous volume")["name"]
        .as_str()
        .unwrap()
        .to_string();
    let mut blue_sees =
        vec!["bluedemand".to_string(), "bluevol".into(), "sharedvol".into(), anonymous.clone()];
    blue_sees.sort();
    assert_eq!(names(&otto), blue_sees);
    assert_eq!(names(&vera), blue_sees);
    assert_eq!(names(&olga), ["sharedvol"]);
    assert_eq!(names(ADMIN_TOKEN), blue_sees);

    // Red cannot inspect, remove or mount blue's volumes: the same answer as for none at all.
    for name in ["bluevol", "bluedemand", anonymous.as_str()] {
        for method in ["GET", "DELETE"] {
            let r = daemon.call(Some(&olga), method, &format!("/api/v1/volumes/{name}"), None);
            assert_eq!(r.status, 404, "{method} {name} as red: {}", r.text());
            assert_eq!(r.json()["message"], format!("No such volume: {name}"));
        }
        let r = mounting(&olga, json!([{"type": "volume", "source": name, "target": "/stolen"}]));
        assert_eq!(r.status, 404, "mounting {name} as red: {}", r.text());
        assert_eq!(r.json()["message"], format!("No such volume: {name}"));
    }
    // A mount without a type is a volume too.
    let r = mounting(&olga, json!([{"source": "bluevol", "target": "/stolen"}]));
    assert_eq!(r.status, 404, "{}", r.text());
    // Nor take a blue volume's name, nor reach one through a stack file.
    let r = volume(&olga, "bluevol");
    assert_eq!(r.status, 409, "{}", r.text());
    let stolen = "services:\n  x:\n    image: busybox\n    command: [\"true\"]\n    network_mode: none\n    \
                  volumes: [\"v:/data\"]\nvolumes:\n  v:\n    external: true\n    name: bluevol\n";
    let r = daemon.call(
        Some(&olga),
        "POST",
        "/api/v1/stacks/sneaky/up",
        Some(json!({"compose_file": stolen, "working_dir": working_dir})),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["message"], "No such volume: bluevol");
    assert_eq!(names(&olga), ["sharedvol"]);

    // A shared volume is read-only to members: they mount and inspect it, admins remove it.
    assert_eq!(daemon.call(Some(&olga), "GET", "/api/v1/volumes/sharedvol", None).status, 200);
    let r = mounting(&olga, json!([{"type": "volume", "source": "sharedvol", "target": "/s"}]));
    assert_eq!(r.status, 201, "{}", r.text());
    let r = daemon.call(Some(&otto), "DELETE", "/api/v1/volumes/sharedvol", None);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("shared (no team owns it)"), "{}", r.text());
    assert_eq!(names(&otto), blue_sees, "red's mount left the shared volume shared");
    // A viewer reads but does not create or remove.
    assert_eq!(daemon.call(Some(&vera), "GET", "/api/v1/volumes/bluevol", None).status, 200);
    assert_eq!(daemon.call(Some(&vera), "DELETE", "/api/v1/volumes/bluevol", None).status, 403);
    assert_eq!(volume(&vera, "veravol").status, 403);

    // A stack's volumes are its team's.
    let own = "services:\n  x:\n    image: busybox\n    command: [\"true\"]\n    network_mode: none\n    \
               volumes: [\"data:/data\"]\nvolumes:\n  data: {}\n";
    let up = daemon.call(
        Some(&olga),
        "POST",
        "/api/v1/stacks/redstack/up",
        Some(json!({"compose_file": own, "working_dir": working_dir})),
    );
    assert_eq!(up.status, 200, "{}", up.text());
    assert_ne!(json_lines(&up.text()).pop().unwrap()["action"], "Error", "{}", up.text());
    assert_eq!(names(&olga), ["redstack_data", "sharedvol"]);
    assert_eq!(daemon.call(Some(&otto), "GET", "/api/v1/volumes/redstack_data", None).status, 404);

    // Blue removes its own; the name is free again, and then red's.
    daemon.remove_all_containers();
    let r = daemon.call(Some(&otto), "DELETE", "/api/v1/volumes/bluevol", None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(volume(&olga, "bluevol").status, 201);
    assert_eq!(daemon.call(Some(&otto), "GET", "/api/v1/volumes/bluevol", None).status, 404);
    assert_eq!(daemon.call(Some(&olga), "GET", "/api/v1/volumes/bluevol", None).status, 200);
    // Admins reach every team's.
    for name in ["bluevol", "bluedemand", "redstack_data", "sharedvol", anonymous.as_str()] {
        let r = daemon.call(Some(ADMIN_TOKEN), "DELETE", &format!("/api/v1/volumes/{name}"), None);
        assert_eq!(r.status, 204, "{name}: {}", r.text());
    }
    let down = daemon.call(Some(&olga), "POST", "/api/v1/stacks/redstack/down", Some(json!({})));
    assert!(down.status == 200 || down.status == 404, "{}", down.text());
}
