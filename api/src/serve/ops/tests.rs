//! Every guarded operation, called through the router as a member of another team (refused as
//! if the object did not exist) and as a member of the owning team (allowed), on objects named
//! after every reserved word and route segment of the API.

use axum::body::Body;
use axum::http::StatusCode;
use berth_types::ExecConfig;

use super::Caller;
use crate::cli::client::path_segment;
use crate::serve::test_support::{call, json, rootfs_tar, setup, Setup};

/// Names that are also path segments or operation words of the API: the reserved ones and the
/// words after a name (`/containers/{name}/start`).
fn names() -> Vec<&'static str> {
    let mut names = berth_types::name::RESERVED_SEGMENTS.to_vec();
    names.extend(["tag", "start", "logs", "exec", "attach", "history", "connect", "mine"]);
    names
}

/// Alice's container, image, volume and stack, all named `name`.
async fn alice_makes(s: &Setup, name: &str) {
    let uri = format!("/api/v1/images/import?reference={name}:1&change=CMD%20%5B%22true%22%5D");
    let (status, body) = call(&s.app, &s.alice, "POST", &uri, Body::from(rootfs_tar())).await;
    assert_eq!(status, StatusCode::OK, "import {name}: {body}");
    let (status, body) =
        call(&s.app, &s.alice, "POST", "/api/v1/volumes", json(serde_json::json!({ "name": name }))).await;
    assert_eq!(status, StatusCode::CREATED, "volume {name}: {body}");
    let config = serde_json::json!({
        "image": format!("{name}:1"),
        "name": name,
        "network": "none",
        "labels": { "com.docker.compose.project": name },
        "mounts": [{ "type": "volume", "source": name, "target": "/data" }],
    });
    let (status, body) = call(&s.app, &s.alice, "POST", "/api/v1/containers", json(config)).await;
    assert_eq!(status, StatusCode::CREATED, "container {name}: {body}");
}

/// The calls on `name`'s objects that another team's member must not make: method, path and
/// body, and the refusal's words.
fn guarded_calls(name: &str) -> Vec<(&'static str, String, serde_json::Value, String)> {
    let c = format!("/api/v1/containers/{}", path_segment(name));
    let image = format!("{name}:1");
    let i = format!("/api/v1/images/{}", path_segment(&image));
    let v = format!("/api/v1/volumes/{}", path_segment(name));
    let st = format!("/api/v1/stacks/{}", path_segment(name));
    let no_container = format!("No such container: {name}");
    let no_image = format!("No such image: {image}");
    let no_volume = format!("No such volume: {name}");
    let no_stack = format!("no such stack: {name}");
    let none = serde_json::Value::Null;
    let mut calls = vec![
        ("GET", c.clone(), none.clone(), no_container.clone()),
        ("GET", format!("{c}/top"), none.clone(), no_container.clone()),
        ("GET", format!("{c}/stats"), none.clone(), no_container.clone()),
        ("GET", format!("{c}/logs"), none.clone(), no_container.clone()),
        ("GET", format!("{c}/archive?path=/"), none.clone(), no_container.clone()),
        ("PUT", format!("{c}/archive?path=/"), none.clone(), no_container.clone()),
        ("GET", format!("{c}/export"), none.clone(), no_container.clone()),
        ("GET", format!("{c}/changes"), none.clone(), no_container.clone()),
        ("POST", format!("{c}/commit"), serde_json::json!({}), no_container.clone()),
        ("POST", format!("{c}/update"), serde_json::json!({ "memory": 67108864 }), no_container.clone()),
        ("POST", format!("{c}/stop"), none.clone(), no_container.clone()),
        ("POST", format!("{c}/kill"), none.clone(), no_container.clone()),
        ("POST", format!("{c}/pause"), none.clone(), no_container.clone()),
        ("POST", format!("{c}/unpause"), none.clone(), no_container.clone()),
        ("POST", format!("{c}/rename?name={name}-renamed"), none.clone(), no_container.clone()),
        (
            "POST",
            "/api/v1/networks/none/connect".into(),
            serde_json::json!({ "container": name }),
            no_container.clone(),
        ),
        (
            "POST",
            "/api/v1/networks/none/disconnect".into(),
            serde_json::json!({ "container": name, "force": false }),
            no_container.clone(),
        ),
        (
            "POST",
            "/api/v1/containers".into(),
            serde_json::json!({ "image": "x", "network": format!("container:{name}") }),
            no_container.clone(),
        ),
        ("GET", i.clone(), none.clone(), no_image.clone()),
        ("GET", format!("{i}/history"), none.clone(), no_image.clone()),
        ("POST", format!("{i}/tag"), serde_json::json!({ "target": format!("{name}:2") }), no_image.clone()),
        ("GET", format!("/api/v1/images/save?name={image}"), none.clone(), no_image.clone()),
        (
            "POST",
            "/api/v1/containers".into(),
            serde_json::json!({ "image": image, "network": "none" }),
            no_image.clone(),
        ),
        ("GET", v.clone(), none.clone(), no_volume.clone()),
        (
            "POST",
            "/api/v1/containers".into(),
            serde_json::json!({ "image": "x", "mounts": [{ "type": "volume", "source": name, "target": "/d" }] }),
            no_volume.clone(),
        ),
        ("GET", st.clone(), none.clone(), no_stack.clone()),
        ("POST", format!("{st}/stop"), serde_json::json!({}), no_stack.clone()),
    ];
    // Calls that would change or start something if they were let through: only the other
    // team's member makes them.
    calls.extend([
        ("POST", format!("{c}/start"), none.clone(), no_container.clone()),
        ("POST", format!("{c}/restart"), none.clone(), no_container.clone()),
        ("POST", format!("{c}/wait"), none.clone(), no_container.clone()),
        ("DELETE", format!("{c}?force=true&v=true"), none.clone(), no_container.clone()),
        ("DELETE", format!("{i}?force=true"), none.clone(), no_image.clone()),
        ("DELETE", format!("{v}?force=true"), none.clone(), no_volume.clone()),
        ("POST", format!("{st}/start"), serde_json::json!({}), no_stack.clone()),
        ("POST", format!("{st}/restart"), serde_json::json!({}), no_stack.clone()),
        ("POST", format!("{st}/down"), serde_json::json!({ "volumes": true }), no_stack.clone()),
    ]);
    calls
}

/// How many of [`guarded_calls`] the owner also makes (the rest would start containers, whose
/// monitor is the daemon's binary, not this test's, or remove what later calls use).
const OWNER_CALLS: usize = 27;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_teams_objects_are_refused_and_the_owners_allowed() {
    let s = setup().await;
    for name in names() {
        alice_makes(&s, name).await;
    }
    for name in names() {
        for (method, uri, body, refusal) in guarded_calls(name) {
            let body = if body.is_null() { Body::empty() } else { json(body) };
            let (status, answer) = call(&s.app, &s.bob, method, &uri, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "bob: {method} {uri}: {answer}");
            assert!(answer.contains(&refusal), "bob: {method} {uri}: {answer}, not {refusal:?}");
        }
        // The WebSocket operations, called directly.
        let bob = s.state.auth.authenticate_token(&s.bob).await.unwrap().principal().unwrap();
        let bob = Caller::new(bob, "GET", "/api/v1/containers/x/exec");
        let exec = ExecConfig { cmd: vec!["true".into()], ..Default::default() };
        assert_eq!(super::containers::exec(&s.state, &bob, name, exec).await.err().unwrap().status, 404);
        assert_eq!(super::containers::attach(&s.state, &bob, name).await.err().unwrap().status, 404);
        // Nothing of Alice's was changed or removed.
        let inspect = s.state.engine.inspect_container(name).await.unwrap();
        assert_eq!(inspect.name.trim_start_matches('/'), name);
        assert!(s.state.engine.inspect_image(&format!("{name}:1")).await.is_ok());
        assert!(s.state.engine.inspect_volume(name).await.is_ok());
    }
    // Lists show Bob none of it.
    for list in [
        "/api/v1/containers?all=1",
        "/api/v1/images",
        "/api/v1/volumes",
        "/api/v1/stacks",
        "/api/v1/events?limit=1000",
    ] {
        let (status, answer) = call(&s.app, &s.bob, "GET", list, Body::empty()).await;
        assert_eq!((status, answer.as_str()), (StatusCode::OK, "[]"), "bob: {list}");
    }
    let (status, answer) = call(&s.app, &s.alice, "GET", "/api/v1/events?limit=1000", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(answer.contains("\"action\":\"create\""), "alice sees her containers' events: {answer}");
    for name in names() {
        for (method, uri, body, refusal) in guarded_calls(name).into_iter().take(OWNER_CALLS) {
            let body = if body.is_null() { Body::empty() } else { json(body) };
            let (status, answer) = call(&s.app, &s.alice, method, &uri, body).await;
            assert!(
                status != StatusCode::FORBIDDEN && !answer.contains(&refusal),
                "alice: {method} {uri}: {status} {answer}"
            );
            if uri.contains("rename") {
                let back = format!("/api/v1/containers/{name}-renamed/rename?name={name}");
                assert_eq!(
                    call(&s.app, &s.alice, "POST", &back, Body::empty()).await.0,
                    StatusCode::NO_CONTENT
                );
            }
        }
        let alice = s.state.auth.authenticate_token(&s.alice).await.unwrap().principal().unwrap();
        let alice = Caller::new(alice, "GET", "/api/v1/containers/x/attach");
        let attached = super::containers::attach(&s.state, &alice, name).await;
        assert!(attached.as_ref().err().is_none_or(|e| e.status != 404 && e.status != 403), "alice: attach");
        let (status, answer) = call(
            &s.app,
            &s.alice,
            "DELETE",
            &format!("/api/v1/containers/{}?v=1", path_segment(name)),
            Body::empty(),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "alice: rm {name}: {answer}");
    }
    // Every refusal of a mutating call is in the audit log, as Bob's.
    let refused: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit WHERE user = 'bob' AND status = 404 AND method != 'GET'",
    )
    .fetch_one(s.state.events.pool())
    .await
    .unwrap();
    assert!(refused >= names().len() as i64 * 15, "{refused} refusals audited");
}

/// A refused field of a request is named in the error body, for the dashboard's forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_field() {
    let s = setup().await;
    alice_makes(&s, "base").await;
    let cases = [
        (serde_json::json!({ "image": "base:1", "name": "-bad", "network": "none" }), "name"),
        (
            serde_json::json!({ "image": "base:1", "network": "none",
                "mounts": [{ "type": "volume", "source": "v", "target": "relative" }] }),
            "mounts",
        ),
    ];
    for (config, field) in cases {
        let (status, answer) = call(&s.app, &s.alice, "POST", "/api/v1/containers", json(config)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let body: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(body["field"], field, "{answer}");
    }
    let (status, answer) =
        call(&s.app, &s.alice, "POST", "/api/v1/networks", json(serde_json::json!({ "name": "a b" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&answer).unwrap()["field"], "name", "{answer}");
}
