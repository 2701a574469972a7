//! Many operations at once and back to back: waits are answered by events (never by the state
//! poll), and concurrent creates never fail over a name the engine chose itself.

use std::collections::HashSet;

use berth_tests::{Daemon, ADMIN_TOKEN};
use serde_json::json;

/// Waits the daemon answered from its state poll instead of an event since it started.
fn waits_answered_by_poll(daemon: &Daemon) -> u64 {
    let info = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/info", None);
    assert_eq!(info.status, 200, "{}", info.text());
    info.json()["waits_answered_by_poll"].as_u64().expect("waits_answered_by_poll in /info")
}

#[test]
fn back_to_back_rm_runs_are_woken_by_events() {
    let daemon = Daemon::with_busybox();
    // Each `run --rm` waits for `removed`; a lost wake-up is answered ~200 ms later by the
    // poll (it was about one run in 40 before the subscription moved ahead of the future).
    for i in 0..200 {
        let out = daemon.berth(&["run", "--rm", "--network", "none", "busybox", "true"]);
        assert_eq!(out.code, 0, "run {i}: {}", out.stderr);
    }
    assert_eq!(waits_answered_by_poll(&daemon), 0, "waits answered by the poll, not by an event");
    let left = daemon.berth(&["ps", "-aq"]).ok();
    assert!(left.stdout.trim().is_empty(), "--rm containers left: {}", left.stdout);
}

#[test]
fn concurrent_unnamed_creates_never_conflict() {
    let daemon = Daemon::with_busybox();
    let (threads, each) = (24, 14);
    let ids: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    (0..each)
                        .map(|_| {
                            let body = json!({"image": "busybox", "cmd": ["true"]});
                            let made =
                                daemon.call(Some(ADMIN_TOKEN), "POST", "/api/v1/containers", Some(body));
                            assert_eq!(made.status, 201, "create without a name: {}", made.text());
                            made.json()["id"].as_str().expect("id").to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a create thread panicked")).collect()
    });
    assert_eq!(ids.len(), threads * each);
    let listed = daemon.call(Some(ADMIN_TOKEN), "GET", "/api/v1/containers?all=true", None).json();
    let names: HashSet<&str> =
        listed.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), threads * each, "every container has a name of its own");
    let removed = daemon.call(Some(ADMIN_TOKEN), "POST", "/api/v1/containers/prune", None);
    assert_eq!(removed.status, 200, "{}", removed.text());
}
