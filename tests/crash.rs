//! The daemon dies or restarts: a `kill -9` in the middle of an import leaves a store that still
//! works and holds no half-written blob; a restart keeps images and history.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use berth_tests::{big_rootfs_tar, busybox_rootfs, image_ids, read_response, Daemon, ADMIN_TOKEN};

/// Files directly in `dir` (none when it does not exist).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn kill9_during_import_leaves_a_working_store() {
    let mut daemon = Daemon::start();
    let busybox = busybox_rootfs(daemon.dir());
    daemon.berth(&["import", busybox.to_str().unwrap(), "busybox"]).ok();
    let blobs_before = daemon.verify_blobs();

    // Stream a 48 MiB import slowly through the API, and kill the daemon once it is writing.
    let tar = big_rootfs_tar(48 << 20);
    let mut s = TcpStream::connect(("127.0.0.1", daemon.port())).unwrap();
    write!(
        s,
        "POST /api/v1/images/import?reference=crash:1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        tar.len()
    )
    .unwrap();
    let ingest = daemon.root().join("ingest");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    for chunk in tar.chunks(256 * 1024) {
        s.write_all(chunk).unwrap();
        sent += chunk.len();
        std::thread::sleep(Duration::from_millis(5));
        // Half-way and with a partial blob on disk: that is the moment to die.
        if sent > tar.len() / 2 && !files_in(&ingest).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the import never started writing to {}", ingest.display());
    }
    assert!(sent < tar.len(), "the daemon must die before the body is complete");
    assert!(!files_in(&ingest).is_empty(), "a partial blob is being written");
    daemon.kill9();
    drop(s);

    // A new daemon on the same root: the partial write is gone, every blob is whole.
    daemon.start_again();
    assert_eq!(files_in(&ingest), Vec::<String>::new(), "ingest/ is emptied on start");
    assert_eq!(daemon.verify_blobs(), blobs_before, "no blob of the interrupted import is visible");
    let table = daemon.berth(&["images"]).ok();
    assert_eq!(table.lines().len(), 2, "only busybox:\n{}", table.stdout);
    assert!(table.stdout.contains("busybox"));
    daemon.berth(&["image", "inspect", "crash:1"]).fails_with("No such image");

    // The same import now goes through, and the failed attempt's history survived the crash
    // only as far as it was written (an import in flight has no event yet).
    let tar_path = daemon.dir().join("big.tar");
    std::fs::write(&tar_path, &tar).unwrap();
    daemon.berth(&["import", tar_path.to_str().unwrap(), "crash:1"]).ok();
    assert_eq!(image_ids(&daemon).len(), 2);
    daemon.verify_blobs();
    daemon.berth(&["save", "-o", daemon.dir().join("crash.tar").to_str().unwrap(), "crash:1"]).ok();
}

#[test]
fn restart_keeps_images_and_events() {
    let mut daemon = Daemon::start();
    let busybox = busybox_rootfs(daemon.dir());
    let id = daemon.berth(&["import", "-c", "CMD [\"sh\"]", busybox.to_str().unwrap(), "busybox"]).ok();
    let id = id.stdout.trim().to_string();
    daemon.berth(&["tag", "busybox", "kept:1"]).ok();
    daemon.berth(&["image", "inspect", "gone"]).fails_with("No such image");
    let events_before = daemon.http("GET", "/api/v1/events", &[], b"").json();
    assert_eq!(events_before.as_array().unwrap().len(), 2, "{events_before}");

    daemon.restart();
    assert_eq!(image_ids(&daemon), vec![id.clone(), id.clone()]);
    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.berth(&["image", "inspect", "kept:1"]).ok().stdout).unwrap();
    assert_eq!(inspect[0]["config"]["cmd"], serde_json::json!(["sh"]));
    assert_eq!(daemon.http("GET", "/api/v1/events", &[], b"").json(), events_before);

    // And after a kill -9 too: the history is durable once the operation answered.
    daemon.berth(&["rmi", "kept:1"]).ok();
    daemon.kill9();
    daemon.start_again();
    let events = daemon.http("GET", "/api/v1/events", &[], b"").json();
    assert_eq!(events[0]["action"], "untag");
    assert_eq!(events[0]["subject"], "kept:1");
    assert_eq!(events.as_array().unwrap().len(), 3);
    assert_eq!(image_ids(&daemon), vec![id]);
}

/// An upload the daemon refuses early still gets its error answer, not a reset connection.
#[test]
fn refused_upload_gets_an_answer() {
    let daemon = Daemon::start();
    let mut junk = vec![0u8; 8 << 20];
    junk[..4].copy_from_slice(b"junk");
    let mut s = TcpStream::connect(("127.0.0.1", daemon.port())).unwrap();
    write!(
        s,
        "POST /api/v1/images/import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        junk.len()
    )
    .unwrap();
    s.write_all(&junk).unwrap();
    let answer = read_response(&mut s);
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("not a tar archive"), "{}", answer.text());
}

/// A client that goes away in the middle of an upload, right at a tar entry boundary (where
/// the part sent looks like a complete archive), imports nothing.
#[test]
fn upload_cut_at_an_entry_boundary_imports_nothing() {
    let daemon = Daemon::start();
    let mut builder = tar::Builder::new(Vec::new());
    let mut boundary = 0;
    for name in ["first.bin", "second.bin"] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(1 << 20);
        builder.append_data(&mut header, name, &vec![7u8; 1 << 20][..]).unwrap();
        if boundary == 0 {
            boundary = builder.get_ref().len();
        }
    }
    let tar = builder.into_inner().unwrap();

    let mut s = TcpStream::connect(("127.0.0.1", daemon.port())).unwrap();
    write!(
        s,
        "POST /api/v1/images/import?reference=cut:1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: {}\r\n\r\n",
        tar.len()
    )
    .unwrap();
    s.write_all(&tar[..boundary]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);

    // The daemon records the failed import once it noticed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = daemon.http("GET", "/api/v1/events", &[], b"").json();
        if let Some(e) = events.as_array().unwrap().iter().find(|e| e["action"] == "import") {
            assert_eq!(e["outcome"], "failure", "{e}");
            assert_eq!(e["subject"], "cut:1", "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "no import event after the client went away");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(daemon.berth(&["images", "-q"]).ok().stdout, "");
    daemon.berth(&["image", "inspect", "cut:1"]).fails_with("No such image");
    assert_eq!(daemon.verify_blobs(), 0, "no blob of the cut upload is kept");
}
