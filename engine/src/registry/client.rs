//! HTTP to registries (the OCI distribution API, Docker registry v2): which scheme a registry is
//! reached with, authentication (anonymous, Basic, Bearer tokens from the registry's token
//! service, cached per scope), and error answers turned into engine errors.
//!
//! Built on reqwest directly rather than oci-client: a pull here tees one layer body into the
//! content store and the unpacker while it streams, resumes a broken body with `Range` at the
//! byte it stopped, and shares one download between concurrent pulls; a push uploads in chunks
//! with `Content-Range` and mounts across repositories. oci-client hands out whole blobs or
//! plain streams behind its own retry-less calls and keeps its auth state per client, so those
//! parts would have to be rebuilt around it anyway.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use sha2::Digest as _;

use super::auth::{parse_challenge, Challenge, CredentialStore, Credentials};
use crate::error::{Error, ErrorKind, Result};
use crate::reference::DEFAULT_DOMAIN;

/// Where Docker Hub's registry API lives (`docker.io` is only its name).
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// How long a token without `expires_in` is trusted (the distribution spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are renewed this long before they run out, so a request never carries a stale one.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// How a registry is reached: its base URL and what it asked for at `/v2/`.
#[derive(Debug, Clone)]
struct Endpoint {
    base: Url,
    challenge: Option<Challenge>,
}

/// A bearer token; `Debug` hides it.
#[derive(Clone)]
struct Token {
    value: String,
    expires: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("value", &"<redacted>").field("expires", &self.expires).finish()
    }
}

/// The engine's registry client: one connection pool, the known endpoints and tokens.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// Registries (host, host:port, or IPv4 CIDR) that may be reached over plain HTTP, besides
    /// loopback addresses.
    insecure: RwLock<Vec<String>>,
    /// Registries added as objects with their insecure flag (`berth registry add --insecure`),
    /// kept apart from `--insecure-registry` so that either can change alone.
    insecure_objects: RwLock<Vec<String>>,
    pub(crate) credentials: CredentialStore,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    /// (registry, scopes) → token.
    tokens: Mutex<HashMap<(String, String), Token>>,
}

/// `repository:<path>:<actions>`, the scope a token is asked for.
pub fn repository_scope(path: &str, actions: &str) -> String {
    format!("repository:{path}:{actions}")
}

impl RegistryClient {
    pub fn new(root: &std::path::Path) -> Result<RegistryClient> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            // A stalled body (no byte for this long) counts as broken and is resumed.
            .read_timeout(Duration::from_secs(60))
            .no_proxy();
        let http = match environment_proxy() {
            Some(proxy) => http.proxy(proxy),
            None => http,
        };
        let http =
            http.build().map_err(|e| Error::InvalidInput(format!("setting up the registry client: {e}")))?;
        Ok(RegistryClient {
            http,
            insecure: RwLock::new(Vec::new()),
            insecure_objects: RwLock::new(Vec::new()),
            credentials: CredentialStore::new(root),
            endpoints: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Sets the registries that may be reached over plain HTTP (`--insecure-registry`).
    pub fn set_insecure(&self, registries: Vec<String>) -> Result<()> {
        for r in &registries {
            if r.is_empty() || r.contains("://") || r.contains(char::is_whitespace) {
                return Err(Error::InvalidInput(format!(
                    "invalid insecure registry {r:?}: want host, host:port or an IPv4 CIDR"
                )));
            }
        }
        *self.insecure.write().unwrap_or_else(|p| p.into_inner()) = registries;
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }

    /// Sets the registries added as objects that may be reached over plain HTTP.
    pub fn set_insecure_objects(&self, registries: Vec<String>) {
        *self.insecure_objects.write().unwrap_or_else(|p| p.into_inner()) = registries;
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Whether `registry` (`host[:port]`) may be reached over plain HTTP: loopback always (as
    /// Docker does), others only when listed.
    pub fn allows_plain_http(&self, registry: &str) -> bool {
        let host = host_of(registry);
        if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return true;
        }
        if self.insecure_objects.read().unwrap_or_else(|p| p.into_inner()).iter().any(|r| r == registry) {
            return true;
        }
        let listed = self.insecure.read().unwrap_or_else(|p| p.into_inner());
        listed.iter().any(|entry| {
            entry == registry
                || entry == host
                || match (entry.split_once('/'), host.parse::<IpAddr>()) {
                    (Some((net, bits)), Ok(IpAddr::V4(ip))) => {
                        match (net.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>()) {
                            (Ok(net), Ok(bits)) if bits <= 32 => {
                                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                                u32::from(ip) & mask == u32::from(net) & mask
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                }
        })
    }

    /// The registry's endpoint, probing `/v2/` the first time: HTTPS, or plain HTTP where
    /// allowed and HTTPS does not answer (Docker's order).
    async fn endpoint(&self, registry: &str) -> Result<Endpoint> {
        if let Some(ep) = self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).get(registry) {
            return Ok(ep.clone());
        }
        let host = if registry == DEFAULT_DOMAIN { DOCKER_HUB_API } else { registry };
        let https = Url::parse(&format!("https://{host}/"))
            .map_err(|e| Error::InvalidInput(format!("invalid registry {registry:?}: {e}")))?;
        let probe = match self.ping(&https).await {
            Ok(challenge) => Endpoint { base: https, challenge },
            Err(tls_error) if self.allows_plain_http(registry) => {
                let http = Url::parse(&format!("http://{host}/")).expect("valid once https parsed");
                match self.ping(&http).await {
                    Ok(challenge) => Endpoint { base: http, challenge },
                    Err(plain_error) => {
                        return Err(registry_unreachable(registry, &format!("{tls_error}; {plain_error}")))
                    }
                }
            }
            Err(e) => return Err(registry_unreachable(registry, &e)),
        };
        tracing::debug!(registry, base = %probe.base, challenge = ?probe.challenge, "registry endpoint");
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).insert(registry.to_string(), probe.clone());
        Ok(probe)
    }

    /// `GET /v2/`: `Ok(challenge)` when the registry speaks the API (200, or 401 with a
    /// challenge); `Err(reason)` when it cannot be reached there.
    async fn ping(&self, base: &Url) -> std::result::Result<Option<Challenge>, String> {
        let url = base.join("v2/").expect("static path");
        let response = self.http.get(url.clone()).send().await.map_err(|e| error_chain(&e))?;
        match response.status() {
            s if s.is_success() => Ok(None),
            StatusCode::UNAUTHORIZED => Ok(challenge_of(response.headers())),
            s => Err(format!("GET {url}: {s} (not a registry v2 API)")),
        }
    }

    /// The base URL of `registry`'s API (`https://host/`).
    pub async fn base(&self, registry: &str) -> Result<Url> {
        Ok(self.endpoint(registry).await?.base)
    }

    /// Sends the request `make` builds (from the client and the registry's base URL), with the
    /// authorization the registry asks for, for `scopes`. On a 401 the challenge is read again,
    /// a new token fetched, and the request built and sent once more; so `make` must be able to
    /// build it twice (streamed bodies go in requests that are authorized already).
    pub async fn send(
        &self,
        registry: &str,
        scopes: &[String],
        make: &(dyn Fn(&reqwest::Client, &Url) -> RequestBuilder + Sync),
    ) -> Result<Response> {
        self.send_as(registry, scopes, None, make).await
    }

    /// [`send`](Self::send) with `credentials` instead of the stored ones when given (a
    /// caller's own, for one transfer).
    pub async fn send_as(
        &self,
        registry: &str,
        scopes: &[String],
        credentials: Option<&Credentials>,
        make: &(dyn Fn(&reqwest::Client, &Url) -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let mut endpoint = self.endpoint(registry).await?;
        let mut authorization = self.authorization(registry, &endpoint, scopes, credentials, false).await?;
        let mut retried = false;
        loop {
            let mut request = make(&self.http, &endpoint.base);
            if let Some(value) = &authorization {
                request = request.header(AUTHORIZATION, value);
            }
            let response = request.send().await.map_err(|e| network_error(registry, &e))?;
            if response.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(response);
            }
            retried = true;
            let Some(challenge) = challenge_of(response.headers()) else { return Ok(response) };
            endpoint.challenge = Some(challenge);
            self.endpoints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(registry.to_string(), endpoint.clone());
            match self.authorization(registry, &endpoint, scopes, credentials, true).await? {
                Some(value) => authorization = Some(value),
                None => return Ok(response),
            }
        }
    }

    /// The `Authorization` value for a request: none when the registry asked for nothing,
    /// Basic with the `given` or else the stored credentials, or a Bearer token for `scopes`
    /// (cached, or fetched from the realm when `fresh` or when there is none).
    async fn authorization(
        &self,
        registry: &str,
        endpoint: &Endpoint,
        scopes: &[String],
        given: Option<&Credentials>,
        fresh: bool,
    ) -> Result<Option<String>> {
        let credentials = match given {
            Some(c) => Some(c.clone()),
            None => self.credentials.get(registry)?,
        };
        match &endpoint.challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(credentials.map(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                // A token got with a caller's own credentials is cached for those credentials
                // only: another caller must not ride on it.
                let mut key = (registry.to_string(), scopes.join(" "));
                if let Some(c) = given {
                    let hash = sha2::Sha256::digest(c.basic_header().as_bytes());
                    key.1.push_str(&format!(" as {}", hex::encode(hash)));
                }
                if !fresh {
                    if let Some(token) = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
                        if token.expires > Instant::now() + TOKEN_MARGIN {
                            return Ok(Some(format!("Bearer {}", token.value)));
                        }
                    }
                }
                let token = self
                    .fetch_token(registry, realm, service.as_deref(), scopes, credentials.as_ref())
                    .await?;
                let value = format!("Bearer {}", token.value);
                self.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(key, token);
                Ok(Some(value))
            }
        }
    }

    /// Asks the token service (`realm`) for a token, as Docker does: `GET realm?service=…&scope=…`,
    /// with Basic credentials when there are some (anonymous otherwise).
    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<&Credentials>,
    ) -> Result<Token> {
        let mut url = Url::parse(realm).map_err(|e| {
            registry_error(registry, ErrorKind::Internal, format!("invalid token realm {realm:?}: {e}"))
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
            if let Some(c) = credentials {
                query.append_pair("account", &c.username);
            }
        }
        let mut request = self.http.get(url);
        if let Some(c) = credentials {
            request = request.header(AUTHORIZATION, c.basic_header());
        }
        let response = request.send().await.map_err(|e| {
            registry_error(
                registry,
                ErrorKind::Internal,
                format!("fetching a token from {realm}: {}", error_chain(&e)),
            )
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let why = if credentials.is_some() {
                "unauthorized: incorrect username or password"
            } else {
                "unauthorized: authentication required"
            };
            return Err(registry_error(
                registry,
                ErrorKind::InvalidInput,
                format!("{why} (token service {realm}: {status})"),
            ));
        }
        if !status.is_success() {
            return Err(registry_error(
                registry,
                ErrorKind::Internal,
                format!("token service {realm} answered {status}"),
            ));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let bytes = response.bytes().await.map_err(|e| network_error(registry, &e))?;
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            registry_error(registry, ErrorKind::Internal, format!("token service {realm}: bad answer: {e}"))
        })?;
        let value = answer.token.or(answer.access_token).filter(|t| !t.is_empty()).ok_or_else(|| {
            registry_error(registry, ErrorKind::Internal, format!("token service {realm} gave no token"))
        })?;
        let lifetime = answer.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Ok(Token { value, expires: Instant::now() + lifetime })
    }

    /// Checks `credentials` against `registry` without storing them (`login`).
    pub async fn check_login(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let endpoint = self.endpoint(registry).await?;
        let url = endpoint.base.join("v2/").expect("static path");
        let failed = |status: StatusCode| {
            registry_error(
                registry,
                ErrorKind::InvalidInput,
                format!("login attempt to {url} failed with status: {status}"),
            )
        };
        match &endpoint.challenge {
            // No authentication asked: any credentials do, as with Docker.
            None => Ok(()),
            Some(Challenge::Basic) => {
                let response = self
                    .http
                    .get(url.clone())
                    .header(AUTHORIZATION, credentials.basic_header())
                    .send()
                    .await
                    .map_err(|e| network_error(registry, &e))?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(failed(response.status()))
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => self
                .fetch_token(registry, realm, service.as_deref(), &[], Some(credentials))
                .await
                .map(|_| ()),
        }
    }

    /// Forgets the tokens of `registry` (after a login or logout changed who we are there).
    pub fn forget_tokens(&self, registry: &str) {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).retain(|(r, _), _| r != registry);
    }

    /// Builds `<base>v2/<path>` (path already percent-safe: repository paths and digests are).
    pub fn url(base: &Url, path: &str) -> Url {
        base.join(&format!("v2/{path}")).expect("registry paths are valid URL paths")
    }

    /// A plain request to a URL the registry handed out (upload locations), method and all.
    pub fn request(client: &reqwest::Client, method: Method, url: Url) -> RequestBuilder {
        client.request(method, url)
    }
}

/// `HTTPS_PROXY` / `HTTP_PROXY` (and `NO_PROXY`) as Docker's daemon uses them, except that
/// loopback registries are never proxied (Go's rule: a proxy cannot reach this machine's
/// registry on 127.0.0.1).
fn environment_proxy() -> Option<reqwest::Proxy> {
    let var = |names: [&str; 2]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
    let https = var(["HTTPS_PROXY", "https_proxy"]);
    let http = var(["HTTP_PROXY", "http_proxy"]);
    if https.is_none() && http.is_none() {
        return None;
    }
    let proxy = reqwest::Proxy::custom(move |url: &Url| {
        let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
        if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return None;
        }
        match url.scheme() {
            "https" => https.clone(),
            "http" => http.clone(),
            _ => None,
        }
    });
    Some(proxy.no_proxy(reqwest::NoProxy::from_env()))
}

fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    registry.rsplit_once(':').map_or(registry, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            registry
        }
    })
}

fn challenge_of(headers: &HeaderMap) -> Option<Challenge> {
    headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).find_map(parse_challenge)
}

/// reqwest's errors keep the cause (connection refused, TLS, ...) in `source()`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

pub fn registry_error(registry: &str, kind: ErrorKind, message: String) -> Error {
    let _ = registry;
    Error::Registry { message, kind }
}

fn registry_unreachable(registry: &str, why: &str) -> Error {
    Error::Registry {
        message: format!("registry {registry} cannot be reached: {why}"),
        kind: ErrorKind::Internal,
    }
}

pub fn network_error(registry: &str, e: &reqwest::Error) -> Error {
    Error::Registry {
        message: format!("talking to registry {registry}: {}", error_chain(e)),
        kind: ErrorKind::Internal,
    }
}

/// Turns an error answer into an engine error: `{what}: {code}: {message}` for each error the
/// registry listed (`manifest for … not found: manifest unknown: manifest unknown`), with the
/// kind its status calls for.
pub async fn answer_error(response: Response, what: &str) -> Error {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<RegistryErrorItem>,
    }
    #[derive(Deserialize)]
    struct RegistryErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let listed: Vec<String> = serde_json::from_slice::<Errors>(&body)
        .map(|e| {
            e.errors
                .into_iter()
                .map(|item| {
                    let code = item.code.to_ascii_lowercase().replace('_', " ");
                    match (code.is_empty(), item.message.is_empty()) {
                        (false, false) => format!("{code}: {}", item.message),
                        (false, true) => code,
                        (true, _) => item.message,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let detail = if listed.is_empty() { status.to_string() } else { listed.join("; ") };
    let kind = match status {
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    };
    let detail = if status == StatusCode::UNAUTHORIZED && !detail.starts_with("unauthorized") {
        format!("unauthorized: {detail}")
    } else {
        detail
    };
    Error::Registry { message: format!("{what}: {detail}"), kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_listed_registries() {
        let dir = tempfile::tempdir().unwrap();
        let c = RegistryClient::new(dir.path()).unwrap();
        assert!(c.allows_plain_http("localhost:5000"));
        assert!(c.allows_plain_http("127.0.0.1:5000"));
        assert!(c.allows_plain_http("127.3.0.1"));
        assert!(c.allows_plain_http("[::1]:5000"));
        assert!(!c.allows_plain_http("registry.example:5000"));
        assert!(!c.allows_plain_http("docker.io"));
        assert!(!c.allows_plain_http("10.1.2.3:5000"));
        c.set_insecure(vec!["registry.example:5000".into(), "10.0.0.0/8".into()]).unwrap();
        assert!(c.allows_plain_http("registry.example:5000"));
        assert!(!c.allows_plain_http("registry.example:5001"));
        assert!(c.allows_plain_http("10.1.2.3:5000"));
        assert!(!c.allows_plain_http("11.1.2.3:5000"));
        assert!(c.set_insecure(vec!["http://x".into()]).is_err());
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_of("localhost:5000"), "localhost");
        assert_eq!(host_of("docker.io"), "docker.io");
        assert_eq!(host_of("[::1]:5000"), "::1");
    }
}
