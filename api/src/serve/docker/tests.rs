//! The Docker face through its router, on TCP with API tokens: version negotiation, who may
//! call, the translation's refusals, team ownership and the audit, as berth's own API has them.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

use crate::serve::auth::Transport;
use crate::serve::test_support::{call, json, rootfs_tar, setup};

fn docker(state: &crate::serve::state::AppState) -> Router {
    super::service(state.clone(), Transport::Tcp { tls: false })
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn versions_and_callers() {
    let s = setup().await;
    let app = docker(&s.state);
    // No credentials, and a browser's session cookie, are both anonymous here.
    for request in [
        Request::get("/_ping").body(Body::empty()).unwrap(),
        Request::get("/_ping").header("cookie", "berth_session=x").body(Body::empty()).unwrap(),
    ] {
        let (status, _, body) = send(&app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, headers, body) = send(
        &app,
        Request::head("/_ping")
            .header("authorization", format!("Bearer {}", s.alice))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["api-version"], super::API_VERSION);
    assert_eq!(headers["ostype"], "linux");
    for (path, want) in [
        ("/v1.99/version", StatusCode::BAD_REQUEST),
        ("/v1.12/version", StatusCode::BAD_REQUEST),
        ("/v1.41/version", StatusCode::OK),
        ("/version", StatusCode::OK),
        ("/v1.41/no/such/route", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = call(&app, &s.alice, "GET", path, Body::empty()).await;
        assert_eq!(status, want, "{path}: {body}");
        let message = serde_json::from_str::<serde_json::Value>(&body).unwrap();
        if want == StatusCode::OK {
            assert_eq!(message["ApiVersion"], super::API_VERSION, "{body}");
        } else {
            assert!(message["message"].is_string(), "{path}: {body}");
        }
    }
    let (_, body) = call(&app, &s.alice, "GET", "/v1.99/version", Body::empty()).await;
    assert!(body.contains("client version 1.99 is too new. Maximum supported API version is 1.45"), "{body}");
}

#[tokio::test]
async fn containers_are_owned_refused_and_audited_as_in_berths_api() {
    let s = setup().await;
    let app = docker(&s.state);
    let (status, body) =
        call(&s.app, &s.alice, "POST", "/api/v1/images/import?reference=tiny:1", Body::from(rootfs_tar()))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // What berth does not implement is refused by name, never dropped.
    let pid_host = serde_json::json!({"Image": "tiny:1", "HostConfig": {"PidMode": "host"}});
    let (status, body) = call(&app, &s.alice, "POST", "/containers/create", json(pid_host)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("HostConfig.PidMode"), "{body}");
    for bad in [Body::from("{"), Body::from("[1]"), Body::empty(), json(serde_json::json!({"Image": 5}))] {
        let (status, body) = call(&app, &s.alice, "POST", "/containers/create", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, body) = call(
        &app,
        &s.alice,
        "POST",
        "/v1.41/containers/create?name=nope",
        json(serde_json::json!({"Image": "absent:1"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("No such image: absent:1"), "{body}");

    let config =
        serde_json::json!({"Image": "tiny:1", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}});
    let (status, body) =
        call(&app, &s.alice, "POST", "/v1.41/containers/create?name=mine", json(config.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(&app, &s.alice, "POST", "/containers/create?name=mine", json(config)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Another team's container does not exist for bob, through either API.
    for path in ["/containers/mine/json", "/containers/mine/logs?stdout=1"] {
        let (status, body) = call(&app, &s.bob, "GET", path, Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body.contains("No such container: mine"), "{body}");
    }
    let (status, body) = call(&app, &s.bob, "DELETE", "/containers/mine?force=1", Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, body) = call(&app, &s.bob, "GET", "/containers/json?all=1", Body::empty()).await;
    assert_eq!(body, "[]");

    let (status, body) = call(&app, &s.alice, "GET", "/containers/mine/json", Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let inspect: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(inspect["Name"], "/mine");
    assert_eq!(inspect["State"]["Status"], "created");
    assert_eq!(inspect["HostConfig"]["NetworkMode"], "none");
    let (_, body) = call(
        &app,
        &s.alice,
        "GET",
        "/containers/json?all=1&filters=%7B%22name%22%3A%5B%22mine%22%5D%7D",
        Body::empty(),
    )
    .await;
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["Names"][0], "/mine", "{body}");
    let (status, body) = call(
        &app,
        &s.alice,
        "GET",
        "/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Exec instances need a running container and are found by ID only.
    let (status, body) =
        call(&app, &s.alice, "POST", "/containers/mine/exec", json(serde_json::json!({"Cmd": ["true"]})))
            .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call(&app, &s.alice, "GET", "/exec/0123/json", Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // `docker system df`: the team's image with its one user, the container with its writable
    // layer's size; nothing of alice's team for bob.
    let (status, body) = call(&app, &s.alice, "GET", "/system/df", Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(df["Images"][0]["RepoTags"][0], "tiny:1", "{body}");
    assert_eq!(df["Images"][0]["Containers"], 1, "{body}");
    assert_eq!(df["Containers"][0]["Names"][0], "/mine", "{body}");
    assert!(df["Containers"][0]["SizeRw"].as_i64().is_some(), "{body}");
    assert!(df["LayersSize"].as_u64().unwrap() > 0, "{body}");
    assert!(df["Volumes"].is_array() && df["BuildCache"].is_array(), "{body}");
    let (_, body) = call(&app, &s.bob, "GET", "/system/df", Body::empty()).await;
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(df["Images"], serde_json::json!([]), "{body}");
    assert_eq!(df["Containers"], serde_json::json!([]), "{body}");

    let (status, body) = call(&app, &s.alice, "DELETE", "/containers/mine", Body::empty()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The audit says which API each call came through.
    let (status, body) =
        call(&s.app, &s.alice, "GET", "/api/v1/history/audit?api=docker&limit=100", Body::empty()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "operators do not read the audit: {body}");
    let rows = sqlx::query_as::<_, (String, String, String, i64)>(
        "SELECT api, user, path, status FROM audit ORDER BY id",
    )
    .fetch_all(s.state.events.pool())
    .await
    .unwrap();
    assert!(rows.contains(&("docker".into(), "alice".into(), "/containers/create".into(), 201)), "{rows:?}");
    assert!(rows.contains(&("docker".into(), "bob".into(), "/containers/mine".into(), 404)), "{rows:?}");
    assert!(
        rows.contains(&("berth".into(), "alice".into(), "/api/v1/images/import".into(), 200)),
        "{rows:?}"
    );
}
