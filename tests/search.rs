//! `berth search` and `berth search --tags` against Debian's docker-registry (no `/v1/search`:
//! searched by its catalog) and against berth's own registry server, and the docker CLI's
//! `docker search` through the Docker API face. Everything on 127.0.0.1.

use berth_tests::dockerd::docker_at;
use berth_tests::registry::Registry;
use berth_tests::{free_port, Daemon};

/// A daemon with busybox pushed to `registry` as each of `names` (`repo:tag`).
fn pushed(daemon: &Daemon, registry: &str, names: &[&str]) {
    for name in names {
        let reference = format!("{registry}/{name}");
        daemon.berth(&["tag", "busybox", &reference]).ok();
        daemon.berth(&["push", &reference]).ok();
    }
}

#[test]
fn search_by_catalog_with_docker_columns_filters_and_formats() {
    let registry = Registry::start();
    let host = registry.host();
    let daemon = Daemon::with_busybox();
    pushed(&daemon, &host, &["team/alpha-one:1", "team/alpha-two:1", "other/beta:1"]);

    let out = daemon.berth(&["search", &format!("{host}/alpha")]).ok();
    let lines = out.lines();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    );
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[1].starts_with(&format!("{host}/team/alpha-one")), "{}", out.stdout);
    assert!(lines[2].starts_with(&format!("{host}/team/alpha-two")), "{}", out.stdout);

    let limited =
        daemon.berth(&["search", "--limit", "1", "--format", "{{.Name}}", &format!("{host}/alpha")]).ok();
    assert_eq!(limited.stdout, format!("{host}/team/alpha-one\n"));
    let official = daemon
        .berth(&["search", "--filter", "is-official=true", "--format", "{{.Name}}", &format!("{host}/a")])
        .ok();
    assert_eq!(official.stdout, "");
    let starred = daemon
        .berth(&["search", "-f", "stars=0", "--format", "{{.Name}}:{{.StarCount}}", &format!("{host}/beta")])
        .ok();
    assert_eq!(starred.stdout, format!("{host}/other/beta:0\n"));
    daemon
        .berth(&["search", "--filter", "color=red", &format!("{host}/a")])
        .fails_with("invalid filter 'color'");
    daemon
        .berth(&["search", "--limit", "0", &format!("{host}/a")])
        .fails_with("limit 0 is outside the range [1, 100]");

    // The tags of one repository, with size, platform and digest.
    let digest = {
        let out = daemon.berth(&["image", "inspect", &format!("{host}/team/alpha-one:1")]).ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v[0]["manifest_digest"].as_str().unwrap().to_string()
    };
    let tags = daemon.berth(&["search", "--tags", "--no-trunc", &format!("{host}/team/alpha-one")]).ok();
    let lines = tags.lines();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["TAG", "SIZE", "PLATFORMS", "DIGEST"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], "1");
    assert!(row[1].ends_with("B"), "a size: {}", lines[1]);
    assert!(row[2].starts_with("linux/"), "a platform: {}", lines[1]);
    assert_eq!(row[3], digest);

    // The dashboard's view of the tag; distribution 2.8 deletes manifests by digest only, so
    // deleting the tag is refused with a clear reason (and the tag stays).
    let admin = Some(berth_tests::ADMIN_TOKEN);
    let path = format!("/api/v1/registry/manifest?reference={host}/team/alpha-one:1");
    let shown = daemon.call(admin, "GET", &path, None);
    assert_eq!((shown.status, shown.json()["digest"].as_str()), (200, Some(digest.as_str())));
    let refused = daemon.call(admin, "DELETE", &path, None);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.json()["message"].as_str().unwrap().contains("does not allow deleting a tag"));

    // The docker CLI's `docker search`, through the Docker API face: the same answer.
    let docker =
        docker_at(&daemon.docker_host(), &["search", "--format", "{{.Name}}", &format!("{host}/alpha")]);
    assert_eq!(docker.code, 0, "{}", docker.stderr);
    assert_eq!(docker.stdout, format!("{host}/team/alpha-one\n{host}/team/alpha-two\n"));
}

#[test]
fn search_against_berths_own_registry_sees_what_the_caller_may_pull() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start_with_args(&["--registry-listen", &listen]);
    daemon.import_busybox("busybox:latest");
    daemon.berth(&["tag", "busybox", "dev/served:1"]).ok();
    daemon.berth(&["tag", "busybox", "dev/served:2"]).ok();
    daemon
        .berth_stdin(
            &["login", &listen, "-u", "admin", "--password-stdin"],
            berth_tests::ADMIN_PASSWORD.as_bytes(),
        )
        .ok();

    let out = daemon.berth(&["search", "--format", "{{.Name}}", &format!("{listen}/serv")]).ok();
    assert_eq!(out.stdout, format!("{listen}/dev/served\n"));
    let tags =
        daemon.berth(&["search", "--tags", "--format", "{{.Tag}}", &format!("{listen}/dev/served")]).ok();
    assert_eq!(tags.stdout, "1\n2\n");

    // A tag's manifest as the dashboard browses it: the image's platform, config and layers.
    let admin = Some(berth_tests::ADMIN_TOKEN);
    let reference = format!("{listen}/dev/served:1");
    let path = format!("/api/v1/registry/manifest?reference={reference}");
    let shown = daemon.call(admin, "GET", &path, None);
    assert_eq!(shown.status, 200, "{}", shown.text());
    let shown = shown.json();
    let local = daemon.berth(&["image", "inspect", "dev/served:1"]).ok();
    let local: serde_json::Value = serde_json::from_str(&local.stdout).unwrap();
    assert_eq!(shown["digest"], local[0]["manifest_digest"]);
    let image = &shown["images"][0];
    assert!(image["platform"].as_str().unwrap().starts_with("linux/"), "{image}");
    assert_eq!(image["config"]["digest"], local[0]["id"]);
    assert_eq!(image["command"], serde_json::json!(["sh"]));
    let layers = image["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{image}");
    assert!(
        layers[0]["size"].as_u64().unwrap() > 0
            && layers[0]["digest"].as_str().unwrap().starts_with("sha256:")
    );

    // Deleting a tag: refused to a viewer, as other deletes; an operator's goes, the other tag stays.
    let vic = daemon.user_with_token("vic", "viewer", None);
    assert_eq!(daemon.call(Some(&vic), "DELETE", &path, None).status, 403);
    let deleted = daemon.call(admin, "DELETE", &path, None);
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let tags =
        daemon.berth(&["search", "--tags", "--format", "{{.Tag}}", &format!("{listen}/dev/served")]).ok();
    assert_eq!(tags.stdout, "2\n");
}

#[test]
fn registries_are_objects_admins_manage_and_teams_see() {
    let registry = Registry::start();
    let host = registry.host();
    let daemon = Daemon::with_busybox();
    let vic = daemon.user_with_token("vic", "viewer", Some("dev"));
    let olga = daemon.user_with_token("olga", "operator", Some("ops"));

    daemon.berth(&["registry", "add", "shared", &format!("http://{host}/ignored/path")]).ok();
    daemon
        .berth(&["registry", "add", "--team", "dev", "--insecure", "devs", "registry.dev.example:5000"])
        .ok();
    daemon.berth(&["registry", "add", "shared", "elsewhere:1"]).fails_with("registry shared already exists");
    daemon.berth(&["registry", "add", "bad/name", "x:1"]).fails_with("invalid registry name");
    daemon.berth(&["registry", "add", "--team", "nosuch", "t", "x:1"]).fails_with("nosuch");

    let ls = daemon.berth(&["registry", "ls"]).ok();
    let lines = ls.lines();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "URL", "INSECURE", "TEAM", "LOGGED", "IN"]
    );
    assert!(
        lines[1].starts_with("devs")
            && lines[1].contains("registry.dev.example:5000")
            && lines[1].contains(" yes "),
        "{}",
        ls.stdout
    );
    assert!(
        lines[2].starts_with("shared") && lines[2].contains(&host) && lines[2].contains("(all)"),
        "{}",
        ls.stdout
    );

    // After `login`, the listing says so; pull, push and search use those credentials.
    daemon.berth_stdin(&["login", &host, "-u", "any", "--password-stdin"], b"thing").ok();
    let ls = daemon.berth(&["registry", "ls"]).ok();
    assert!(ls.lines()[2].trim_end().ends_with("yes"), "{}", ls.stdout);

    // Teams see what they may use; only admins change the list.
    let names = |token: &str| -> Vec<String> {
        let r = daemon.call(Some(token), "GET", "/api/v1/registries", None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&vic), ["devs", "shared"]);
    assert_eq!(names(&olga), ["shared"]);
    let refused = daemon.call(
        Some(&olga),
        "POST",
        "/api/v1/registries",
        Some(serde_json::json!({"name": "x", "url": "x:1"})),
    );
    assert_eq!(refused.status, 403);
    assert_eq!(daemon.call(Some(&olga), "DELETE", "/api/v1/registries/shared", None).status, 403);

    daemon.berth(&["registry", "rm", "devs", "shared"]).ok();
    daemon.berth(&["registry", "rm", "devs"]).fails_with("no such registry: devs");
    assert_eq!(daemon.berth(&["registry", "ls", "-q"]).ok().stdout, "");
}
