//! berth as a registry server (`berth serve --registry-listen`), driven by clients nobody here
//! wrote: skopeo (copy both ways, inspect, list-tags), another berth daemon pulling and pushing,
//! and raw HTTP for what the clients do not show (chunked uploads, mounts, a truncated upload,
//! the referrers API, refusals per role). Everything on 127.0.0.1, but for the second node: a
//! daemon in a network namespace of its own, linked to this one by a veth pair.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use berth_tests::registry::Registry;
use berth_tests::{free_port, read_response, Daemon, HttpResponse};
use sha2::{Digest, Sha256};

/// A daemon serving its registry on a free port; returns it with `127.0.0.1:PORT`.
fn serving() -> (Daemon, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start_with_args(&["--registry-listen", &listen]);
    (daemon, listen)
}

fn skopeo(args: &[&str]) -> (bool, String) {
    let out = Command::new("skopeo").args(args).output().expect("running skopeo");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn skopeo_ok(args: &[&str]) -> String {
    let (ok, text) = skopeo(args);
    assert!(ok, "skopeo {args:?} failed:\n{text}");
    text
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// One HTTP/1.1 request to the registry.
fn request(host: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut s = TcpStream::connect(host).expect("connecting to the registry");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn inspect(daemon: &Daemon, name: &str) -> serde_json::Value {
    let out = daemon.berth(&["image", "inspect", name]).ok();
    serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
}

fn error_code(r: &HttpResponse) -> String {
    r.json()["errors"][0]["code"].as_str().unwrap_or("").to_string()
}

fn assert_no_ingest(daemon: &Daemon) {
    let ingest: Vec<_> = std::fs::read_dir(daemon.root().join("ingest")).unwrap().collect();
    assert!(ingest.is_empty(), "ingest/ is not empty: {ingest:?}");
    daemon.verify_blobs();
}

#[test]
fn skopeo_copies_both_ways_byte_identical_and_pushes_become_local_images() {
    let (daemon, host) = serving();
    daemon.import_busybox("busybox:latest");
    daemon.user_with_token("olga", "operator", Some("dev"));
    let creds = "olga:olga-password";

    // berth's own local image is served as library/busybox, byte for byte.
    let local = inspect(&daemon, "busybox");
    let local_digest = local["manifest_digest"].as_str().unwrap().to_string();
    let admin = format!("admin:{}", berth_tests::ADMIN_PASSWORD);
    let raw = skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &admin,
        &format!("docker://{host}/busybox"),
    ]);
    assert_eq!(sha256(raw.as_bytes()), local_digest, "the served manifest is not the stored one");

    // skopeo pushes an image from a docker archive into the registry: it becomes a local image
    // of olga's team, and reads back with the same digest.
    let archive = daemon.dir().join("busybox.tar");
    daemon.berth(&["save", "-o", archive.to_str().unwrap(), "busybox"]).ok();
    let target = format!("docker://{host}/dev/app:1");
    let digest_file = daemon.dir().join("pushed-digest");
    skopeo_ok(&[
        "copy",
        "--digestfile",
        digest_file.to_str().unwrap(),
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        &format!("docker-archive:{}", archive.display()),
        &target,
    ]);
    let images = daemon.berth(&["images"]).ok();
    assert!(
        images.stdout.lines().any(|l| l.starts_with("dev/app") && l.contains(" 1 ")),
        "{}",
        images.stdout
    );
    // The same config as the local busybox, so the same image; the pushed manifest (skopeo's
    // own compression) is what the registry serves.
    assert_eq!(inspect(&daemon, "dev/app:1")["id"], local["id"]);
    let pushed_digest = std::fs::read_to_string(&digest_file).unwrap().trim().to_string();
    let inspected = skopeo_ok(&["inspect", "--tls-verify=false", "--creds", creds, &target]);
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["Digest"].as_str(), Some(pushed_digest.as_str()));
    let tags = skopeo_ok(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        creds,
        &format!("docker://{host}/dev/app"),
    ]);
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["1"]));

    // And out again, to Debian's docker-registry: the same manifest digest there.
    let reference = Registry::start();
    let there = format!("docker://{}/copy/app:1", reference.host());
    skopeo_ok(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        creds,
        &target,
        &there,
    ]);
    let raw_there = skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &there]);
    assert_eq!(sha256(raw_there.as_bytes()), pushed_digest, "the round trip changed the manifest");

    // A second tag in another repository of the team: the blobs are mounted or already there,
    // never stored twice (one file per digest in the store).
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        creds,
        "--dest-creds",
        creds,
        &there,
        &format!("docker://{host}/dev/other:2"),
    ]);
    let other = skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds,
        &format!("docker://{host}/dev/other:2"),
    ]);
    assert_eq!(sha256(other.as_bytes()), pushed_digest);
    assert_no_ingest(&daemon);

    // Runnable as any local image.
    let out = daemon.berth(&["run", "--rm", "--network", "none", "dev/app:1", "echo", "served"]).ok();
    assert_eq!(out.stdout.trim(), "served");
}

#[test]
fn roles_teams_and_public_repositories() {
    let (daemon, host) = serving();
    daemon.import_busybox("busybox:latest");
    let olga = daemon.user_with_token("olga", "operator", Some("dev"));
    daemon.user_with_token("vic", "viewer", Some("dev"));
    daemon.user_with_token("otto", "operator", Some("ops"));
    let archive = daemon.dir().join("busybox.tar");
    daemon.berth(&["save", "-o", archive.to_str().unwrap(), "busybox"]).ok();
    let source = format!("docker-archive:{}", archive.display());
    let app = format!("docker://{host}/dev/app:1");
    skopeo_ok(&["copy", "--dest-tls-verify=false", "--dest-creds", "olga:olga-password", &source, &app]);

    // A viewer of the team pulls, and may not push.
    skopeo_ok(&["inspect", "--tls-verify=false", "--creds", "vic:vic-password", &app]);
    let (ok, text) = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "vic:vic-password",
        &source,
        &format!("docker://{host}/dev/app:2"),
    ]);
    assert!(!ok && text.contains("denied"), "a viewer pushed: {text}");
    // Another team's operator does not see it and may not push to it.
    let (ok, text) = skopeo(&["inspect", "--tls-verify=false", "--creds", "otto:otto-password", &app]);
    assert!(!ok && text.to_lowercase().contains("unknown"), "another team read it: {text}");
    let (ok, text) = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "otto:otto-password",
        &source,
        &format!("docker://{host}/dev/app:3"),
    ]);
    assert!(!ok && text.contains("denied"), "another team pushed: {text}");
    // Wrong password, and no credentials at all.
    let (ok, text) = skopeo(&["inspect", "--tls-verify=false", "--creds", "olga:wrong", &app]);
    assert!(!ok && text.contains("401") || text.to_lowercase().contains("unauthorized"), "{text}");
    let (ok, text) = skopeo(&["inspect", "--tls-verify=false", "--no-creds", &app]);
    assert!(
        !ok && (text.to_lowercase().contains("unauthorized") || text.contains("authentication required")),
        "{text}"
    );
    let catalog =
        request(&host, "GET", "/v2/_catalog", &[("Authorization", &basic("otto", "otto-password"))], b"");
    assert_eq!(catalog.status, 200);
    assert!(
        !catalog.text().contains("dev/app"),
        "the catalog shows another team's repository: {}",
        catalog.text()
    );

    // Marked public (by the owning team's operator): anyone pulls, nobody anonymous pushes.
    let set = daemon.call(
        Some(&olga),
        "PUT",
        "/api/v1/registry/repositories",
        Some(serde_json::json!({"name": "dev/app", "public": true})),
    );
    assert_eq!(set.status, 204, "{}", set.text());
    skopeo_ok(&["inspect", "--tls-verify=false", "--no-creds", &app]);
    let (ok, _) = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "nobody:nothing",
        &source,
        &format!("docker://{host}/dev/app:4"),
    ]);
    assert!(!ok, "an anonymous push went through");
}

#[test]
fn uploads_chunked_mounted_truncated_and_referrers_over_http() {
    let (daemon, host) = serving();
    daemon.user_with_token("olga", "operator", Some("dev"));
    let auth = basic("olga", "olga-password");
    let h = [("Authorization", auth.as_str())];

    // Without credentials: the distribution spec's challenge.
    let r = request(&host, "GET", "/v2/", &[], b"");
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap().to_string();
    assert!(challenge.starts_with("Bearer realm=\"http://") && challenge.contains("/token\""), "{challenge}");
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    // The token endpoint takes Basic credentials; its token opens the API.
    let t = request(&host, "GET", "/token?service=berth&scope=repository:dev/x:pull,push", &h, b"");
    assert_eq!(t.status, 200, "{}", t.text());
    let bearer = format!("Bearer {}", t.json()["token"].as_str().unwrap());
    assert_eq!(request(&host, "GET", "/v2/", &[("Authorization", &bearer)], b"").status, 200);
    let bad =
        request(&host, "GET", "/token?service=berth", &[("Authorization", &basic("olga", "nope"))], b"");
    assert_eq!(bad.status, 401);

    // A chunked upload: two PATCHes with Content-Range, then the PUT with the digest.
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = sha256(&blob);
    let start = request(&host, "POST", "/v2/dev/x/blobs/uploads/", &h, b"");
    assert_eq!(start.status, 202, "{}", start.text());
    let location = start.header("location").unwrap().to_string();
    let first = request(&host, "PATCH", &location, &[h[0], ("Content-Range", "0-99999")], &blob[..100_000]);
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(first.header("range"), Some("0-99999"));
    // A chunk that does not continue where the upload stands is refused with 416.
    let wrong = request(&host, "PATCH", &location, &[h[0], ("Content-Range", "5-10")], &blob[5..11]);
    assert_eq!(wrong.status, 416);
    let second =
        request(&host, "PATCH", &location, &[h[0], ("Content-Range", "100000-199999")], &blob[100_000..]);
    assert_eq!(second.status, 202);
    let status = request(&host, "GET", &location, &h, b"");
    assert_eq!((status.status, status.header("range")), (204, Some("0-199999")));
    let done = request(&host, "PUT", &format!("{location}?digest={digest}"), &h, b"");
    assert_eq!(done.status, 201, "{}", done.text());
    assert_eq!(done.header("docker-content-digest"), Some(digest.as_str()));
    let got = request(&host, "GET", &format!("/v2/dev/x/blobs/{digest}"), &h, b"");
    assert_eq!((got.status, got.body == blob), (200, true));
    assert_eq!(got.header("accept-ranges"), Some("bytes"));
    // Ranges of it, as distribution answers them: 206 with Content-Range, 416 past the end.
    let blob_path = format!("/v2/dev/x/blobs/{digest}");
    let part = request(&host, "GET", &blob_path, &[h[0], ("Range", "bytes=1000-1999")], b"");
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/200000"));
    assert_eq!(part.body, blob[1000..2000]);
    let tail = request(&host, "GET", &blob_path, &[h[0], ("Range", "bytes=-10")], b"");
    assert_eq!((tail.status, tail.body.as_slice()), (206, &blob[199_990..]));
    let open = request(&host, "GET", &blob_path, &[h[0], ("Range", "bytes=150000-")], b"");
    assert_eq!(open.header("content-range"), Some("bytes 150000-199999/200000"));
    assert_eq!(open.body, blob[150_000..]);
    let past = request(&host, "GET", &blob_path, &[h[0], ("Range", "bytes=200000-")], b"");
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */200000"));

    // A chunk cut by the network: the upload keeps what arrived, says so, and resumes there.
    let start = request(&host, "POST", "/v2/dev/x/blobs/uploads/", &h, b"");
    let location = start.header("location").unwrap().to_string();
    {
        let mut s = TcpStream::connect(&host).unwrap();
        let head = format!(
            "PATCH {location} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
            blob.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&blob[..120_000]).unwrap();
        s.flush().unwrap();
        // Dropped here: the connection closes in the middle of the body.
    }
    let mut offset = None;
    for _ in 0..100 {
        let status = request(&host, "GET", &location, &h, b"");
        if status.header("range") == Some("0-119999") {
            offset = Some(120_000);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(offset, Some(120_000), "the cut upload does not report what it has");
    let rest =
        request(&host, "PATCH", &location, &[h[0], ("Content-Range", "120000-199999")], &blob[120_000..]);
    assert_eq!(rest.status, 202, "{}", rest.text());
    let done = request(&host, "PUT", &format!("{location}?digest={digest}"), &h, b"");
    assert_eq!(done.status, 201, "{}", done.text());

    // The same layer pushed into two repositories at once: both succeed, one file is kept.
    let layer: Vec<u8> = (0..2_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let layer_digest = sha256(&layer);
    std::thread::scope(|scope| {
        let pushes: Vec<_> = ["dev/p1", "dev/p2", "dev/p1"]
            .into_iter()
            .map(|repo| {
                let (host, auth, layer, layer_digest) = (&host, &auth, &layer, &layer_digest);
                scope.spawn(move || {
                    let path = format!("/v2/{repo}/blobs/uploads/?digest={layer_digest}");
                    request(host, "POST", &path, &[("Authorization", auth.as_str())], layer).status
                })
            })
            .collect();
        for push in pushes {
            assert_eq!(push.join().unwrap(), 201);
        }
    });
    for repo in ["dev/p1", "dev/p2"] {
        let head = request(&host, "HEAD", &format!("/v2/{repo}/blobs/{layer_digest}"), &h, b"");
        assert_eq!(head.status, 200);
    }
    let stored = std::fs::read_dir(daemon.root().join("blobs/sha256"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy() == layer_digest[7..])
        .count();
    assert_eq!(stored, 1);

    // A truncated monolithic upload: refused, nothing kept.
    let other: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 241) as u8).collect();
    let other_digest = sha256(&other);
    let cut = request(
        &host,
        "POST",
        &format!("/v2/dev/x/blobs/uploads/?digest={other_digest}"),
        &h,
        &other[..30_000],
    );
    assert_eq!((cut.status, error_code(&cut).as_str()), (400, "DIGEST_INVALID"), "{}", cut.text());
    let head = request(&host, "HEAD", &format!("/v2/dev/x/blobs/{other_digest}"), &h, b"");
    assert_eq!(head.status, 404);
    assert!(!daemon.root().join("blobs/sha256").join(&other_digest[7..]).exists());
    assert_no_ingest(&daemon);

    // A config and a manifest that names the blob: an artifact, served by tag and digest.
    let config = br#"{"kind":"test"}"#;
    let config_digest = sha256(config);
    let up = request(&host, "POST", &format!("/v2/dev/x/blobs/uploads/?digest={config_digest}"), &h, config);
    assert_eq!(up.status, 201);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.berth.test",
        "config": {"mediaType": "application/vnd.berth.test.config", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/octet-stream", "digest": digest, "size": blob.len()}],
    })
    .to_string();
    let manifest_digest = sha256(manifest.as_bytes());
    let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    let put = request(&host, "PUT", "/v2/dev/x/manifests/v1", &[h[0], ct], manifest.as_bytes());
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(put.header("docker-content-digest"), Some(manifest_digest.as_str()));
    let by_digest = request(&host, "GET", &format!("/v2/dev/x/manifests/{manifest_digest}"), &h, b"");
    assert_eq!(by_digest.body, manifest.as_bytes());
    assert_eq!(by_digest.header("content-type"), Some(ct.1));

    // A manifest naming a blob the repository does not have is refused.
    let missing = manifest.replace(&digest[7..], &"0".repeat(64));
    let refused = request(&host, "PUT", "/v2/dev/x/manifests/v2", &[h[0], ct], missing.as_bytes());
    assert_eq!((refused.status, error_code(&refused).as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));

    // Cross-repository mounts: the blobs appear in dev/y without a byte sent, and the same
    // manifest may name them there.
    for d in [&digest, &config_digest] {
        let mount =
            request(&host, "POST", &format!("/v2/dev/y/blobs/uploads/?mount={d}&from=dev/x"), &h, b"");
        assert_eq!(mount.status, 201, "{}", mount.text());
        assert_eq!(request(&host, "HEAD", &format!("/v2/dev/y/blobs/{d}"), &h, b"").status, 200);
    }
    let put = request(&host, "PUT", "/v2/dev/y/manifests/v1", &[h[0], ct], manifest.as_bytes());
    assert_eq!(put.status, 201, "{}", put.text());
    // Not from a repository the caller cannot read: then it is an upload as usual.
    let refused =
        request(&host, "POST", &format!("/v2/dev/z/blobs/uploads/?mount={digest}&from=dev/nothing"), &h, b"");
    assert_eq!(refused.status, 202);

    // A referrer: a signature-like artifact whose subject is the manifest.
    let referrer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.berth.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len()},
    })
    .to_string();
    let referrer_digest = sha256(referrer.as_bytes());
    let put = request(
        &host,
        "PUT",
        &format!("/v2/dev/x/manifests/{referrer_digest}"),
        &[h[0], ct],
        referrer.as_bytes(),
    );
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(put.header("oci-subject"), Some(manifest_digest.as_str()));
    let listed = request(&host, "GET", &format!("/v2/dev/x/referrers/{manifest_digest}"), &h, b"").json();
    assert_eq!(listed["manifests"][0]["digest"].as_str(), Some(referrer_digest.as_str()));
    assert_eq!(listed["manifests"][0]["artifactType"].as_str(), Some("application/vnd.berth.signature"));
    let filtered =
        request(&host, "GET", &format!("/v2/dev/x/referrers/{manifest_digest}?artifactType=other"), &h, b"");
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(filtered.json()["manifests"], serde_json::json!([]));

    // Garbage collection keeps what the registry serves beyond local images.
    daemon.berth(&["image", "prune", "-a", "-f"]).ok();
    let kept = request(&host, "GET", &format!("/v2/dev/x/blobs/{digest}"), &h, b"");
    assert_eq!((kept.status, kept.body == blob), (200, true), "collected a served blob");

    // Catalog pagination with its Link header, tags, and deletion.
    let page = request(&host, "GET", "/v2/_catalog?n=1", &h, b"");
    assert_eq!(page.json()["repositories"], serde_json::json!(["dev/x"]));
    assert_eq!(page.header("link"), Some("</v2/_catalog?last=dev%2Fx&n=1>; rel=\"next\""));
    let tags = request(&host, "GET", "/v2/dev/x/tags/list", &h, b"").json();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    assert_eq!(request(&host, "DELETE", "/v2/dev/x/manifests/v1", &h, b"").status, 202);
    let gone = request(&host, "GET", "/v2/dev/x/manifests/v1", &h, b"");
    assert_eq!((gone.status, error_code(&gone).as_str()), (404, "MANIFEST_UNKNOWN"));
    let unknown = request(&host, "GET", "/v2/dev/nothing/tags/list", &h, b"");
    assert_eq!((unknown.status, error_code(&unknown).as_str()), (404, "NAME_UNKNOWN"));
    let invalid = request(&host, "GET", "/v2/Dev/X/tags/list", &h, b"");
    assert_eq!((invalid.status, error_code(&invalid).as_str()), (400, "NAME_INVALID"));
}

/// A veth pair between the host and a daemon's network namespace, with a /30 of 10.199.0.0/16
/// that exists only on this link (no route out of the machine); removed on drop, so also when
/// the test fails.
struct Link {
    host_end: String,
    host_address: String,
    peer_address: String,
}

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip").args(args).output().expect("running ip")
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Link {
    /// Links the network namespace of process `pid` to the host.
    fn to_namespace_of(pid: u32) -> Link {
        let used = String::from_utf8_lossy(&ip(&["-4", "-o", "addr"]).stdout).into_owned();
        let routes = String::from_utf8_lossy(&ip(&["-4", "route"]).stdout).into_owned();
        let subnet = (0..250u32)
            .map(|k| (std::process::id() + k) % 250)
            .map(|n| format!("10.199.{n}."))
            .find(|prefix| !used.contains(prefix.as_str()) && !routes.contains(prefix.as_str()))
            .expect("a free /30 in 10.199.0.0/16");
        let tag = std::process::id() % 100_000;
        let link = Link {
            host_end: format!("brgrh{tag}"),
            host_address: format!("{subnet}1"),
            peer_address: format!("{subnet}2"),
        };
        let peer_end = format!("brgrn{tag}");
        ip_ok(&["link", "add", &link.host_end, "type", "veth", "peer", "name", &peer_end]);
        ip_ok(&["link", "set", &peer_end, "netns", &pid.to_string()]);
        ip_ok(&["addr", "add", &format!("{}/30", link.host_address), "dev", &link.host_end]);
        ip_ok(&["link", "set", &link.host_end, "up"]);
        let netns = format!("--net=/proc/{pid}/ns/net");
        for args in [
            vec!["addr", "add", &format!("{}/30", link.peer_address), "dev", &peer_end],
            vec!["link", "set", &peer_end, "up"],
        ] {
            let out = Command::new("nsenter").arg(&netns).arg("ip").args(&args).output().expect("nsenter");
            assert!(
                out.status.success(),
                "ip {args:?} in the namespace: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        link
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Removing one end removes the pair.
        let _ = ip(&["link", "del", &self.host_end]);
    }
}

#[test]
fn a_second_berth_daemon_pulls_and_pushes_through_the_registry() {
    // Node B is a second host: its own root, and a network namespace whose only way out is a
    // veth link to this one, in a subnet that exists only on that link.
    let node_b = Daemon::start_in_netns_with_args(&["--insecure-registry", "10.199.0.0/16"]);
    let link = Link::to_namespace_of(node_b.pid().expect("node B runs"));
    // Node A serves its registry on its end of the link (plain HTTP: --insecure).
    let host = format!("{}:{}", link.host_address, free_port());
    let node_a = Daemon::start_with_args(&["--registry-listen", &host, "--insecure"]);
    node_a.import_busybox("busybox:latest");
    node_a.user_with_token("olga", "operator", Some("dev"));
    node_a.berth(&["tag", "busybox", "dev/app:1"]).ok();
    // The image was imported over the socket (shared); the team's copy is pushed by node B.
    node_b.berth_stdin(&["login", &host, "-u", "olga", "--password-stdin"], b"olga-password").ok();
    // Node B pulls node A's shared image (any member reads shared repositories)...
    let pulled = node_b.berth(&["pull", &format!("{host}/dev/app:1")]).ok();
    let digest_a = inspect(&node_a, "dev/app:1")["manifest_digest"].as_str().unwrap().to_string();
    assert!(pulled.stdout.contains(&digest_a), "{}", pulled.stdout);
    assert_eq!(
        inspect(&node_b, &format!("{host}/dev/app:1"))["manifest_digest"].as_str(),
        Some(digest_a.as_str())
    );
    let out = node_b
        .berth(&["run", "--rm", "--network", "none", &format!("{host}/dev/app:1"), "echo", "from-a"])
        .ok();
    assert_eq!(out.stdout.trim(), "from-a");
    // Node A's history says who pulled what, from where: node B's end of the link.
    let audit =
        node_a.call(Some(berth_tests::ADMIN_TOKEN), "GET", "/api/v1/history/audit?api=registry", None);
    assert_eq!(audit.status, 200, "{}", audit.text());
    let rows = audit.json()["items"].as_array().cloned().unwrap_or_default();
    let pull = rows
        .iter()
        .find(|r| {
            r["message"].as_str().is_some_and(|m| m.starts_with("pull dev/app") && m.contains(&digest_a))
        })
        .unwrap_or_else(|| panic!("no pull in node A's audit log: {rows:?}"));
    assert_eq!((pull["user"].as_str(), pull["method"].as_str()), (Some("olga"), Some("GET")));
    assert_eq!(pull["address"], link.peer_address.as_str());
    assert!(pull["path"].as_str().unwrap().starts_with("/v2/dev/app/manifests/"), "{pull}");
    // ... and pushes it back under a new name of its team: the same digest on node A.
    node_b.berth(&["tag", &format!("{host}/dev/app:1"), &format!("{host}/dev/copy:2")]).ok();
    node_b.berth(&["push", &format!("{host}/dev/copy:2")]).ok();
    assert_eq!(inspect(&node_a, "dev/copy:2")["manifest_digest"].as_str(), Some(digest_a.as_str()));
    assert_no_ingest(&node_a);
    drop(node_b);
    drop(link);
}

/// podman with its own storage under `dir` (vfs: no mounts to clean up), no system config.
fn podman(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let root = dir.join("podman-root");
    let runroot = dir.join("podman-run");
    let out = Command::new("podman")
        .args(["--root", root.to_str().unwrap(), "--runroot", runroot.to_str().unwrap()])
        .args(["--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs"])
        .args(args)
        .env("TMPDIR", dir)
        .output()
        .expect("running podman");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn podman_pushes_and_pulls_with_equal_digests() {
    let (daemon, host) = serving();
    daemon.import_busybox("busybox:latest");
    daemon.user_with_token("olga", "operator", Some("dev"));
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("busybox.tar");
    daemon.berth(&["save", "-o", archive.to_str().unwrap(), "busybox"]).ok();
    let reference = format!("{host}/dev/pod:1");
    let run = |args: &[&str]| {
        let (ok, text) = podman(work.path(), args);
        assert!(ok, "podman {args:?} failed:\n{text}");
        text
    };
    run(&["pull", &format!("docker-archive:{}", archive.display())]);
    let id = run(&["images", "-q"]).trim().to_string();
    run(&["tag", &id, &reference]);
    let digest_file = work.path().join("digest");
    run(&[
        "push",
        "--tls-verify=false",
        "--creds",
        "olga:olga-password",
        "--digestfile",
        digest_file.to_str().unwrap(),
        &reference,
    ]);
    let pushed = std::fs::read_to_string(&digest_file).unwrap();
    let auth = basic("olga", "olga-password");
    let served = request(&host, "HEAD", "/v2/dev/pod/manifests/1", &[("Authorization", &auth)], b"");
    assert_eq!(served.header("docker-content-digest"), Some(pushed.trim()));
    let images = daemon.berth(&["images"]).ok();
    assert!(
        images.stdout.lines().any(|l| l.starts_with("dev/pod") && l.contains(" 1 ")),
        "{}",
        images.stdout
    );

    // Pulled back by tag and by digest into an empty store: the same manifest.
    run(&["rmi", "-a", "-f"]);
    run(&["pull", "--tls-verify=false", "--creds", "olga:olga-password", &reference]);
    let by_digest = format!("{host}/dev/pod@{}", pushed.trim());
    run(&["pull", "--tls-verify=false", "--creds", "olga:olga-password", &by_digest]);
    let digests = run(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert!(digests.lines().all(|d| d.trim() == pushed.trim()), "{digests}");
    // Without credentials podman is refused.
    let (ok, text) = podman(work.path(), &["pull", "--tls-verify=false", &reference]);
    assert!(!ok, "an anonymous pull went through: {text}");
    run(&["rmi", "-a", "-f"]);
}

/// The digest in a `docker push` or `docker pull` output line (`digest: sha256:...`).
fn digest_in(text: &str) -> Option<String> {
    let i = text.to_ascii_lowercase().find("digest: sha256:")?;
    Some(text[i + 8..].split_whitespace().next()?.to_string())
}

#[test]
fn docker_engine_logs_in_pushes_and_pulls() {
    let Some(dockerd) = berth_tests::dockerd::Dockerd::with_busybox() else { return };
    let (daemon, host) = serving();
    daemon.user_with_token("olga", "operator", Some("dev"));
    let config = tempfile::tempdir().unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let docker = |args: &[&str], stdin: Option<&[u8]>| {
        let out = berth_tests::dockerd::docker_with(&dockerd.docker_host(), args, stdin, &env);
        assert_eq!(out.code, 0, "docker {args:?}: {}{}", out.stdout, out.stderr);
        out.stdout
    };
    let wrong = berth_tests::dockerd::docker_with(
        &dockerd.docker_host(),
        &["login", &host, "-u", "olga", "--password-stdin"],
        Some(b"wrong"),
        &env,
    );
    assert_ne!(wrong.code, 0, "a wrong password logged in");
    docker(&["login", &host, "-u", "olga", "--password-stdin"], Some(b"olga-password"));
    let reference = format!("{host}/dev/docker:1");
    docker(&["tag", "busybox", &reference], None);
    let pushed = docker(&["push", &reference], None);
    let digest = digest_in(&pushed).unwrap_or_else(|| panic!("no digest in: {pushed}"));
    let auth = basic("olga", "olga-password");
    let served = request(&host, "HEAD", "/v2/dev/docker/manifests/1", &[("Authorization", &auth)], b"");
    assert_eq!(served.header("docker-content-digest"), Some(digest.as_str()));
    docker(&["rmi", &reference], None);
    let pulled = docker(&["pull", &reference], None);
    assert_eq!(digest_in(&pulled).as_deref(), Some(digest.as_str()), "{pulled}");
    docker(&["logout", &host], None);
}

#[test]
fn the_registry_speaks_tls_with_the_daemons_certificate() {
    // A CA of the test's, and the daemon's certificate signed by it for localhost.
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Its own name: a leaf whose issuer reads as its subject looks self-signed to OpenSSL.
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "berth test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    let (cert_path, key_path) = (dir.path().join("daemon.crt"), dir.path().join("daemon.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    // skopeo trusts the CA from a certificate directory (containers-certs.d: `*.crt` are CAs).
    let trusted = dir.path().join("trusted");
    std::fs::create_dir(&trusted).unwrap();
    std::fs::write(trusted.join("ca.crt"), ca.pem()).unwrap();

    let port = free_port();
    let daemon = Daemon::start_with_args(&[
        "--registry-listen",
        &format!("127.0.0.1:{port}"),
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    daemon.import_busybox("busybox:latest");
    // The API's TCP listener speaks TLS too: the admin's password, over the unix socket's CLI.
    let creds = format!("admin:{}", berth_tests::ADMIN_PASSWORD);
    let archive = daemon.dir().join("busybox.tar");
    daemon.berth(&["save", "-o", archive.to_str().unwrap(), "busybox"]).ok();
    let target = format!("docker://localhost:{port}/dev/app:1");
    let cert_dir = trusted.to_str().unwrap();

    // Pushed and read back over TLS, verified against the CA (tls-verify stays on).
    skopeo_ok(&[
        "copy",
        "--dest-cert-dir",
        cert_dir,
        "--dest-creds",
        &creds,
        &format!("docker-archive:{}", archive.display()),
        &target,
    ]);
    let inspected = skopeo_ok(&["inspect", "--cert-dir", cert_dir, "--creds", &creds, &target]);
    assert!(inspected.contains("\"Digest\""), "{inspected}");
    // The token realm is https too.
    let challenge = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert", trusted.join("ca.crt").to_str().unwrap()])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/v2/"))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&challenge.stdout).to_ascii_lowercase();
    assert!(
        headers.contains(&format!("realm=\"https://localhost:{port}/token\"")),
        "{headers}{}",
        String::from_utf8_lossy(&challenge.stderr)
    );
    // A client that does not trust the CA is refused the connection; plain HTTP gets nothing.
    let (ok, text) = skopeo(&["inspect", "--creds", &creds, &target]);
    assert!(!ok && text.contains("certificate"), "{text}");
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}/v2/"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "401");
}

/// The dashboard's Registries page in chromium (tests/browser/registries.mjs): the daemon
/// browses its own registry server as a remote registry — search, a repository's tags, a tag's
/// manifest with platform, config and layers — and deletes the tag. Needs what the browser test
/// needs (chromium, `npm ci`, the dashboard built into dist/).
#[test]
fn the_dashboard_browses_a_registry_and_deletes_a_tag_in_chromium() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the checkout").to_path_buf();
    for (path, what) in [
        ("/usr/bin/chromium", "run scripts/setup.sh --test (Debian package chromium)"),
        ("node_modules/playwright-core", "run npm ci (scripts/setup.sh does)"),
        ("dist/index.html", "build the dashboard first: trunk build --release --offline"),
    ] {
        assert!(root.join(path).exists(), "{path} is missing: {what}");
    }
    let (daemon, host) = serving();
    daemon.import_busybox("busybox:latest");
    daemon.berth(&["tag", "busybox", "dev/app:1"]).ok();
    daemon.berth(&["registry", "add", "self", &host]).ok();
    daemon
        .berth_stdin(
            &["login", &host, "-u", "admin", "--password-stdin"],
            berth_tests::ADMIN_PASSWORD.as_bytes(),
        )
        .ok();
    let out = Command::new("node")
        .arg(root.join("tests/browser/registries.mjs"))
        .current_dir(&root)
        .env("BERTH_URL", format!("http://127.0.0.1:{}", daemon.port()))
        .env("BERTH_ADMIN_PASSWORD", berth_tests::ADMIN_PASSWORD)
        .env("REGISTRY_HOST", &host)
        .env("REPOSITORY", "dev/app")
        .env("TAG", "1")
        .env("ARTIFACTS", root.join("target/browser-artifacts"))
        .output()
        .expect("running node (scripts/setup.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("--- registries.mjs ---\n{text}");
    assert!(out.status.success(), "the browser check of the Registries page failed:\n{text}");
    // The tag is gone from the registry, as the page said.
    let listed = daemon.berth(&["search", "--tags", &format!("{host}/dev/app")]);
    assert!(!listed.stdout.lines().any(|l| l.split_whitespace().next() == Some("1")), "{}", listed.stdout);
}

/// A pushed image whose layer is a valid blob but not a tar: the push is answered 201 and the
/// tag served, the background unpack fails, and that failure is an `unpack_failed` image event
/// in berth's history and in the Docker events stream. Nothing half-unpacked stays behind.
#[test]
fn a_pushed_image_that_cannot_be_unpacked_is_reported() {
    let (daemon, host) = serving();
    let admin = basic("admin", berth_tests::ADMIN_PASSWORD);
    let h = [("Authorization", admin.as_str())];
    let upload = |bytes: &[u8]| {
        let digest = sha256(bytes);
        let up = request(&host, "POST", &format!("/v2/dev/broken/blobs/uploads/?digest={digest}"), &h, bytes);
        assert_eq!(up.status, 201, "{}", up.text());
        digest
    };
    // Not all zeros: a zero block would read as the end of an empty archive.
    let layer = b"this is a layer blob but not a tar archive\n".repeat(50);
    let layer_digest = upload(&layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string();
    let config_digest = upload(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    let manifest_digest = sha256(manifest.as_bytes());
    let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    let put = request(&host, "PUT", "/v2/dev/broken/manifests/1", &[h[0], ct], manifest.as_bytes());
    assert_eq!(put.status, 201, "{}", put.text());

    // The event, once the unpack has run: the image's name, the digest and why.
    let mut found = None;
    for _ in 0..200 {
        let events = daemon.http("GET", "/api/v1/events?limit=100", &[], b"").json();
        found = events.as_array().unwrap().iter().find(|e| e["action"] == "unpack_failed").cloned();
        if found.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let event = found.expect("no unpack_failed event");
    assert_eq!(event["type"], "image");
    assert_eq!(event["subject"], "docker.io/dev/broken:1");
    assert_eq!(event["outcome"], "failure");
    let message = event["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("digest={manifest_digest} error=")), "{message}");
    assert!(message.contains(&layer_digest), "the error names the layer: {message}");

    // The Docker events stream carries it too, with the error as an attribute.
    let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let stream = berth_tests::unix_request(
        &daemon.docker_socket(),
        "GET",
        &format!("/events?since=0&until={until}&filters=%7B%22type%22%3A%5B%22image%22%5D%7D"),
        None,
    );
    assert_eq!(stream.status, 200, "{}", stream.text());
    let docker: Vec<serde_json::Value> =
        stream.text().lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let unpack = docker.iter().find(|e| e["Action"] == "unpack_failed").expect("in the Docker stream");
    assert_eq!(unpack["Type"], "image");
    assert_eq!(unpack["Actor"]["Attributes"]["digest"], manifest_digest.as_str());
    assert!(unpack["Actor"]["Attributes"]["error"].as_str().unwrap().contains(&layer_digest), "{unpack}");

    // The tag stays served as pushed; no local image has it; the state is consistent.
    let served = request(&host, "GET", "/v2/dev/broken/manifests/1", &[h[0], ("Accept", ct.1)], b"");
    assert_eq!((served.status, served.body == manifest.as_bytes()), (200, true));
    assert!(!daemon.berth(&["images"]).ok().stdout.contains("broken"));
    let check = daemon.berth(&["system", "check"]);
    assert!(
        berth_tests::check_findings(&check.stdout, None).is_empty(),
        "{}\n{}",
        check.stdout,
        check.stderr
    );
}
