//! Helpers for the HTTP API tests: users with tokens, JSON calls with a chosen identity, and
//! WebSocket clients (tungstenite, as tokio-tungstenite re-exports it, on a blocking socket).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use crate::{Daemon, HttpResponse};

/// A WebSocket to the daemon.
pub type Socket = WebSocket<TcpStream>;

/// `Authorization` header value for a token.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

impl Daemon {
    /// A JSON call over TCP as the holder of `token` (`None`: without credentials).
    pub fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
        let auth = token.map(bearer).unwrap_or_else(|| "none".into());
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        self.http(method, path, &headers, body.as_bytes())
    }

    /// Creates a user (and a team membership if `team`) and returns an API token of theirs.
    pub fn user_with_token(&self, name: &str, role: &str, team: Option<&str>) -> String {
        let admin = Some(crate::ADMIN_TOKEN);
        let created = self.call(
            admin,
            "POST",
            "/api/v1/users",
            Some(serde_json::json!({"name": name, "role": role, "password": format!("{name}-password")})),
        );
        assert_eq!(created.status, 201, "creating user {name}: {}", created.text());
        if let Some(team) = team {
            let t = self.call(admin, "POST", "/api/v1/teams", Some(serde_json::json!({"name": team})));
            assert!(t.status == 201 || t.status == 409, "creating team {team}: {}", t.text());
            let m = self.call(admin, "PUT", &format!("/api/v1/teams/{team}/members/{name}"), None);
            assert_eq!(m.status, 200, "adding {name} to {team}: {}", m.text());
        }
        let token = self.call(
            admin,
            "POST",
            "/api/v1/tokens",
            Some(serde_json::json!({"user": name, "name": "test"})),
        );
        assert_eq!(token.status, 201, "token for {name}: {}", token.text());
        token.json()["secret"].as_str().expect("secret").to_string()
    }

    /// Opens a WebSocket over TCP with extra headers; `Err((status, body))` if the daemon
    /// answers something else than the upgrade.
    pub fn ws(&self, path: &str, headers: &[(&str, &str)]) -> Result<Socket, (u16, String)> {
        let stream = TcpStream::connect(("127.0.0.1", self.port())).expect("connecting to the daemon");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut request =
            format!("ws://127.0.0.1:{}{path}", self.port()).into_client_request().expect("WebSocket request");
        for (k, v) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                v.parse().expect("header value"),
            );
        }
        match tungstenite::client::client(request, stream) {
            Ok((socket, _)) => Ok(socket),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let status = response.status().as_u16();
                let body =
                    String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
                Err((status, body))
            }
            Err(e) => panic!("WebSocket handshake to {path} failed: {e}"),
        }
    }

    /// Opens a WebSocket as the holder of `token`; panics if refused.
    pub fn ws_as(&self, token: &str, path: &str) -> Socket {
        let auth = bearer(token);
        self.ws(path, &[("Authorization", &auth)]).unwrap_or_else(|(s, b)| panic!("{path}: {s} {b}"))
    }
}

/// The next JSON text message, skipping pings; `None` once the socket is closed. Panics if
/// none comes within 30 s.
pub fn next_json(socket: &mut Socket) -> Option<Value> {
    next_json_within(socket, Duration::from_secs(30))
}

fn next_json_within(socket: &mut Socket, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        if Instant::now() > deadline {
            panic!("no message on the WebSocket within {timeout:?}");
        }
        match socket.read() {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).expect("JSON text frame")),
            Ok(Message::Close(_)) => return None,
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return None,
            Err(e) => panic!("reading the WebSocket: {e}"),
        }
    }
}

/// Reads JSON messages until `wanted` matches one (returned), failing after `timeout`.
pub fn wait_for(socket: &mut Socket, timeout: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!("no awaited message within {timeout:?}; seen: {seen:?}");
        }
        match next_json_within(socket, left) {
            Some(v) if wanted(&v) => return v,
            Some(v) => seen.push(v),
            None => panic!("the socket closed before the awaited message; seen: {seen:?}"),
        }
    }
}
