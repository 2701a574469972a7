//! What the daemon's router tests share: a daemon state in a temporary directory with two
//! operators in two teams (alice in `ta`, bob in `tb`), and calls through a router with a token.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use berth_engine::{Engine, EngineConfig};
use berth_types::auth::Role;
use tower::ServiceExt;

use crate::serve::auth::store::AuthStore;
use crate::serve::events::EventLog;
use crate::serve::history::Audit;
use crate::serve::state::AppState;

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    /// berth's own API.
    pub app: Router,
    /// alice's and bob's API tokens.
    pub alice: String,
    pub bob: String,
}

impl Drop for Setup {
    /// The containers' root filesystems stay mounted under the directory: detached, also when a
    /// test fails, so that the directory can go.
    fn drop(&mut self) {
        berth_tests::unmount_under(self.dir.path());
    }
}

pub async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let engine =
        Engine::open(EngineConfig::new(dir.path().join("root"), dir.path().join("run"))).await.unwrap();
    let events = EventLog::open(&dir.path().join("berth.db")).await.unwrap();
    let auth = AuthStore::new(events.pool().clone());
    let state = AppState {
        engine,
        events: events.clone(),
        root: dir.path().join("root"),
        run_dir: dir.path().join("run"),
        auth: auth.clone(),
        audit: Audit::new(events.pool().clone()),
    };
    // The event log is written from the engine's events, as the daemon does.
    crate::serve::routes::containers::record_engine_events(&state.engine, events.clone());
    let mut secrets = Vec::new();
    for (user, team) in [("alice", "ta"), ("bob", "tb")] {
        auth.create_team(team).await.unwrap();
        auth.create_user(user, Some("a long password".into()), Role::Operator).await.unwrap();
        auth.add_member(team, user).await.unwrap();
        secrets.push(auth.create_token(user, "t", Role::Operator, None).await.unwrap().1);
    }
    let app = crate::serve::routes::router(state.clone());
    let bob = secrets.pop().unwrap();
    let alice = secrets.pop().unwrap();
    Setup { dir, state, app, alice, bob }
}

/// One call through the router with `token`; the status and the body.
pub async fn call(app: &Router, token: &str, method: &str, uri: &str, body: Body) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

pub fn json(value: serde_json::Value) -> Body {
    Body::from(value.to_string())
}

/// A one-file root file system as a tar, for `docker import`.
pub fn rootfs_tar() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello", &b"hi\n"[..]).unwrap();
    tar.into_inner().unwrap()
}
