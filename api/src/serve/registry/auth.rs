//! The distribution spec's token flow, backed by berth's users and API tokens. A client without
//! credentials is answered `401` with `WWW-Authenticate: Bearer realm=".../token",service=...,
//! scope=...`; it asks the realm for a token with Basic credentials (a berth user and password,
//! or an API token as the password) or none (anonymous), and sends that token. A token only says
//! who the caller is: what they may do is decided on each request from the current teams and
//! roles (`ops::distribution::authorize`), so a token outlives no demotion by more than its
//! lifetime. Tokens live in memory: a restarted daemon sends clients back to the realm.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use base64::Engine as _;

use crate::serve::auth::throttle::Subject;
use crate::serve::auth::{check_throttle, Api, Attempt, Principal};
use crate::serve::state::AppState;

/// How long an issued token is good for (the client fetches another when it runs out).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// Issued tokens: secret → who (`None`: anonymous) and when it was issued.
#[derive(Default)]
pub struct Tokens {
    issued: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
}

impl Tokens {
    pub fn issue(&self, principal: Option<Principal>) -> String {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let secret = hex::encode(bytes);
        let mut issued = self.issued.lock().expect("tokens lock");
        issued.retain(|_, (_, at)| at.elapsed() < TOKEN_LIFETIME);
        issued.insert(secret.clone(), (principal, Instant::now()));
        secret
    }

    /// `Some(who)` for a live token.
    fn check(&self, secret: &str) -> Option<Option<Principal>> {
        let issued = self.issued.lock().expect("tokens lock");
        issued.get(secret).filter(|(_, at)| at.elapsed() < TOKEN_LIFETIME).map(|(p, _)| p.clone())
    }
}

/// Who a request is from.
pub enum Identity {
    Anonymous,
    Caller(Principal),
}

/// Why credentials were refused: the message, and whether the client must slow down (429).
pub struct BadCredentials {
    pub message: String,
    pub throttled: bool,
}

fn bad(message: &str) -> BadCredentials {
    BadCredentials { message: message.into(), throttled: false }
}

/// Who sent a request to the registry: a token of ours, a berth API token, Basic credentials,
/// or nothing.
pub async fn identify(
    state: &AppState,
    tokens: &Tokens,
    headers: &HeaderMap,
    address: Option<IpAddr>,
    path: &str,
    method: &str,
) -> Result<Identity, BadCredentials> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(Identity::Anonymous) };
    let value = value.to_str().map_err(|_| bad("the Authorization header is not text"))?;
    if let Some(secret) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
        let secret = secret.trim();
        if let Some(who) = tokens.check(secret) {
            return Ok(who.map_or(Identity::Anonymous, Identity::Caller));
        }
        // A berth API token used directly (curl, scripts).
        let subjects: Vec<Subject> = address.map(Subject::address).into_iter().collect();
        if let Ok(crate::serve::auth::store::TokenCheck::Valid(p)) =
            state.auth.authenticate_token(secret).await
        {
            return Ok(Identity::Caller(p));
        }
        if check_throttle(state, &subjects).is_err() {
            return Err(BadCredentials {
                message: "too many failed authentications".into(),
                throttled: true,
            });
        }
        let attempt = Attempt { api: Api::Registry, user: "anonymous", method, path, address };
        attempt.failed(state, &subjects, "invalid or expired registry token").await;
        return Err(bad("invalid or expired token"));
    }
    if let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("malformed Basic credentials"))?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| bad("malformed Basic credentials"))?;
        return basic(state, user, password, address, path, method).await.map(Identity::Caller);
    }
    Err(bad("the Authorization header must be Bearer or Basic"))
}

/// Checks a user name and password (or API token), throttled per user and address as logins are.
async fn basic(
    state: &AppState,
    user: &str,
    password: &str,
    address: Option<IpAddr>,
    path: &str,
    method: &str,
) -> Result<Principal, BadCredentials> {
    let subjects: Vec<Subject> =
        std::iter::once(Subject::User(user.to_string())).chain(address.map(Subject::address)).collect();
    if check_throttle(state, &subjects).is_err() {
        return Err(BadCredentials { message: "too many failed authentications".into(), throttled: true });
    }
    let attempt = Attempt { api: Api::Registry, user, method, path, address };
    match state.auth.check_password(user, password).await {
        Ok(Some(p)) => {
            state.auth.throttle.succeeded(&Subject::User(user.to_string()));
            Ok(p)
        }
        Ok(None) => {
            attempt.failed(state, &subjects, "wrong user name or password").await;
            Err(bad("wrong user name or password"))
        }
        Err(e) => Err(bad(&e.message)),
    }
}

/// The challenge of a `401`: where to get a token, for what.
pub fn challenge(realm: &str, scope: Option<&str>, insufficient: bool) -> String {
    let mut value = format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"");
    if let Some(scope) = scope {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    if insufficient {
        value.push_str(",error=\"insufficient_scope\"");
    }
    value
}

/// The service name in challenges and token requests.
pub const SERVICE: &str = "berth";
