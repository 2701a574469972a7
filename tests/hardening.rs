//! The hardened daemon against a running `berth serve`: login and Bearer-token throttling (429
//! with Retry-After, per user and per address, audited with the address), expiring and revoked
//! API tokens through the CLI, the security headers of the dashboard and the API, and the refusal
//! of a non-loopback listener without TLS. (The lock after repeated failures takes minutes of
//! growing delays to reach: `serve::auth::throttle`'s unit tests drive it with a clock.)

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use berth_tests::{
    berth_binary, free_port, read_response, run_command, Daemon, ADMIN_PASSWORD, ADMIN_TOKEN, TIMED_OUT,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn login(daemon: &Daemon, user: &str, password: &str) -> berth_tests::HttpResponse {
    daemon.http(
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json"), ("Authorization", "none")],
        json!({"username": user, "password": password}).to_string().as_bytes(),
    )
}

/// The audit rows of `user`, newest first.
fn audit_of(daemon: &Daemon, user: &str) -> Vec<Value> {
    let r = daemon.call(Some(ADMIN_TOKEN), "GET", &format!("/api/v1/history/audit?user={user}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"].as_array().expect("items").clone()
}

fn retry_after(r: &berth_tests::HttpResponse) -> u64 {
    r.header("retry-after").unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers)).parse().unwrap()
}

#[test]
fn logins_are_throttled_per_user_and_per_address() {
    let daemon = Daemon::start();
    // Three wrong passwords are free; the fourth makes the next attempt wait a second.
    for _ in 0..4 {
        let wrong = login(&daemon, "admin", "not-the-password");
        assert_eq!(wrong.status, 401, "{}", wrong.text());
        assert_eq!(wrong.json()["message"], "wrong user name or password");
    }
    let early = login(&daemon, "admin", ADMIN_PASSWORD);
    assert_eq!(early.status, 429, "the right password is not even checked: {}", early.text());
    assert_eq!(retry_after(&early), 1);
    assert!(early.json()["message"].as_str().unwrap().contains("try again in 1 seconds"), "{}", early.text());
    std::thread::sleep(Duration::from_millis(1100));
    let ok = login(&daemon, "admin", ADMIN_PASSWORD);
    assert_eq!(ok.status, 200, "{}", ok.text());
    // A login clears the user's count: the next wrong password is free again.
    assert_eq!(login(&daemon, "admin", "not-the-password").status, 401);
    assert_eq!(login(&daemon, "admin", ADMIN_PASSWORD).status, 200);

    // Audited with the address: the failures, and the logins.
    let rows = audit_of(&daemon, "admin");
    let failures: Vec<&Value> = rows.iter().filter(|r| r["status"] == 401).collect();
    assert_eq!(failures.len(), 5, "{rows:#?}");
    for row in &failures {
        assert_eq!(row["address"], "127.0.0.1", "{row}");
        assert_eq!(row["path"], "/api/v1/auth/login");
        assert_eq!(row["message"], "wrong user name or password");
    }
    assert_eq!(rows.iter().filter(|r| r["status"] == 200 && r["message"] == "logged in").count(), 2);

    // Per address: ten failures of any names are free, the eleventh makes the address wait (five
    // of them were admin's above).
    for i in 0..6 {
        assert_eq!(login(&daemon, &format!("nobody{i}"), "not-the-password").status, 401, "attempt {i}");
    }
    let throttled = login(&daemon, "someone-else", "whatever-password");
    assert_eq!(throttled.status, 429, "{}", throttled.text());
    assert!(retry_after(&throttled) >= 1);
    // Unknown names are audited under the name tried.
    assert_eq!(audit_of(&daemon, "nobody3")[0]["address"], "127.0.0.1");
    // A valid API token still works from that address; a bad one waits too.
    assert_eq!(daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/info", None).status, 200);
    let forged = daemon.call(Some("berth_forged"), "GET", "/api/v1/info", None);
    assert_eq!(forged.status, 429, "{}", forged.text());
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
}

#[test]
fn bad_tokens_are_throttled_and_audited() {
    let daemon = Daemon::start();
    for i in 0..11 {
        let r = daemon.call(Some(&format!("berth_guess{i}")), "GET", "/api/v1/containers", None);
        assert_eq!(r.status, 401, "attempt {i}: {}", r.text());
        assert_eq!(r.json()["message"], "invalid API token");
    }
    let r = daemon.call(Some("berth_guess-again"), "GET", "/api/v1/containers", None);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(retry_after(&r), 1);
    let rows = audit_of(&daemon, "anonymous");
    assert_eq!(rows.len(), 11, "{rows:#?}");
    assert!(rows.iter().all(|r| r["address"] == "127.0.0.1" && r["message"] == "invalid API token"));
    // Once the delay is over, the next bad token is answered (and counted) again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(daemon.call(Some("berth_guess-12"), "GET", "/api/v1/info", None).status, 401);
}

#[test]
fn tokens_expire_and_are_revoked_from_the_cli() {
    let daemon = Daemon::start();
    let secret =
        daemon.berth(&["admin", "token", "create", "admin", "--name", "brief", "--expiry", "2s"]).ok();
    let secret = secret.stdout.trim().to_string();
    assert!(secret.starts_with("berth_"), "{secret}");
    let forever =
        daemon.berth(&["admin", "token", "create", "admin", "--name", "kept"]).ok().stdout.trim().to_string();
    assert_eq!(daemon.call(Some(&secret), "GET", "/api/v1/info", None).status, 200);

    let listed = daemon.berth(&["admin", "token", "ls"]).ok();
    let header = listed.lines()[0].to_string();
    assert!(header.contains("LAST USED") && header.contains("EXPIRES"), "{}", listed.stdout);
    let brief = listed.lines().into_iter().find(|l| l.contains("brief")).expect("brief listed").to_string();
    assert!(!brief.contains("never"), "used, and with an expiry: {brief}");
    let kept = listed.lines().into_iter().find(|l| l.contains("kept")).expect("kept listed").to_string();
    assert!(kept.ends_with("never"), "{kept}");
    let ids = daemon.berth(&["admin", "token", "ls", "-q"]).ok();
    assert_eq!(ids.lines().len(), 3, "BERTH_ADMIN_TOKEN, brief, kept: {}", ids.stdout);

    std::thread::sleep(Duration::from_millis(2500));
    let expired = daemon.call(Some(&secret), "GET", "/api/v1/info", None);
    assert_eq!(expired.status, 401, "{}", expired.text());
    assert_eq!(expired.json()["message"], "the API token has expired");
    let rows = audit_of(&daemon, "admin");
    let row = rows.iter().find(|r| r["message"] == "expired API token").expect("the expired token audited");
    assert_eq!((row["status"].as_i64(), row["address"].as_str()), (Some(401), Some("127.0.0.1")), "{row}");

    // Revoked: `rm` (and its alias `revoke`) by id.
    let kept_id = ids.lines()[2].to_string();
    assert_eq!(daemon.call(Some(&forever), "GET", "/api/v1/info", None).status, 200);
    daemon.berth(&["admin", "token", "revoke", &kept_id]).ok();
    assert_eq!(daemon.call(Some(&forever), "GET", "/api/v1/info", None).status, 401);
    daemon.berth(&["admin", "token", "rm", &kept_id]).fails_with("no such token");

    // Bad expiries: a clear refusal, from the CLI and from the API.
    daemon.berth(&["admin", "token", "create", "admin", "--expiry", "0s"]).fails_with("invalid --expiry");
    daemon.berth(&["admin", "token", "create", "admin", "--expiry", "soon"]).fails_with("invalid --expiry");
    let zero = daemon.call(
        Some(ADMIN_TOKEN),
        "POST",
        "/api/v1/tokens",
        Some(json!({"user": "admin", "name": "z", "expires_in": 0})),
    );
    assert_eq!(zero.status, 400, "{}", zero.text());
    let negative = daemon.call(
        Some(ADMIN_TOKEN),
        "POST",
        "/api/v1/tokens",
        Some(json!({"user": "admin", "name": "z", "expires_in": -5})),
    );
    assert_eq!(negative.status, 400, "{}", negative.text());
}

/// The text of each inline `<script>` of a page.
fn inline_scripts(html: &str) -> Vec<String> {
    let mut scripts = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let open_end = after.find('>').expect("a closed tag");
        let body = &after[open_end + 1..];
        let close = body.find("</script>").expect("a closed script");
        if !after[..open_end].contains(" src=") {
            scripts.push(body[..close].to_string());
        }
        rest = &body[close..];
    }
    scripts
}

#[test]
fn security_headers() {
    let daemon = Daemon::start();
    for path in ["/", "/containers"] {
        let page = daemon.http("GET", path, &[("Authorization", "none")], b"");
        assert_eq!(page.status, 200);
        let csp = page.header("content-security-policy").expect("a CSP on the dashboard").to_string();
        for directive in [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive}: {csp}");
        }
        assert!(
            !csp.contains("'unsafe-eval'") && !csp.contains("script-src 'self' 'unsafe-inline'"),
            "{csp}"
        );
        // Whatever inline script the built page has (Trunk's start-up module) is allowed by hash.
        for script in inline_scripts(&page.text()) {
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
            assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}\n{script}");
        }
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
    }
    for (path, token) in [
        ("/api/v1/version", None),
        ("/api/v1/containers", Some(ADMIN_TOKEN)),
        ("/api/v1/containers", None),
        ("/api/v1/nothing-here", Some(ADMIN_TOKEN)),
        ("/_ping", None),
    ] {
        let r = daemon.call(token, "GET", path, None);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}: {:?}", r.headers);
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert!(r.header("content-security-policy").is_none(), "{path}");
    }
    let refused = daemon.call(Some("berth_forged"), "GET", "/api/v1/info", None);
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    // The Docker Engine API face's answers too.
    let mut docker = std::os::unix::net::UnixStream::connect(daemon.docker_socket()).expect("docker.sock");
    docker
        .write_all(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answer = read_response(&mut docker);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn listening_off_loopback_needs_tls_or_insecure() {
    let dir = tempfile::Builder::new().prefix("berth-e2e-").tempdir().unwrap();
    let serve = |args: &[&str]| {
        let mut cmd = Command::new("unshare");
        // A network namespace of its own: an accepted 0.0.0.0 listener is reachable from nowhere.
        cmd.arg("-n").arg(berth_binary()).arg("serve");
        cmd.arg("--root").arg(dir.path().join("root"));
        cmd.arg("--run-dir").arg(dir.path().join("run"));
        cmd.args(["--bridge", "none", "--docker-socket", "none"]).args(args);
        cmd.env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD).env("RUST_LOG", "info");
        run_command(cmd, None, Duration::from_secs(5))
    };
    let port = free_port().to_string();
    let any = format!("0.0.0.0:{port}");
    let refused = serve(&["--listen", &any]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("refusing --listen {any} without --tls-cert/--tls-key")),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--insecure"), "{}", refused.stderr);
    let docker = serve(&["--listen", &format!("127.0.0.1:{port}"), "--docker-listen", &any]);
    assert_eq!(docker.code, 1, "{}", docker.stderr);
    assert!(docker.stderr.contains(&format!("refusing --docker-listen {any}")), "{}", docker.stderr);
    // Nothing was made: the refusal comes first.
    assert!(!dir.path().join("root").exists());

    // With --insecure it starts (and says so); killed at the timeout.
    let started = serve(&["--listen", &any, "--insecure"]);
    assert_eq!(started.code, TIMED_OUT, "{}", started.stderr);
    assert!(started.stderr.contains("--insecure: --listen"), "{}", started.stderr);
    assert!(started.stderr.contains("berth daemon ready"), "{}", started.stderr);
}
