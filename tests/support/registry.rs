//! A real registry for the tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with
//! a config file of our own, in a temporary directory; plain, with htpasswd Basic auth, or with
//! token auth against a small token service run here. Plus a TCP proxy that cuts blob downloads
//! short, to test resumption.
//!
//! Dropping a [`Registry`] kills its process by PID and removes its directory; dropping a
//! [`TokenService`] or a [`CuttingProxy`] stops its thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::free_port;

/// The registry binary Debian's `docker-registry` package installs.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// How the registry authenticates.
pub enum RegistryAuth {
    None,
    /// htpasswd (bcrypt) with one user.
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from a [`TokenService`] that knows one user.
    Token {
        user: String,
        password: String,
    },
}

/// A running `docker-registry`.
pub struct Registry {
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    port: u16,
    token: Option<TokenService>,
}

impl Registry {
    /// Starts a registry without authentication.
    pub fn start() -> Registry {
        Self::start_with(RegistryAuth::None)
    }

    /// Starts a registry with the given authentication and waits until it answers.
    pub fn start_with(auth: RegistryAuth) -> Registry {
        assert!(
            Path::new(REGISTRY_BINARY).exists(),
            "{REGISTRY_BINARY} is missing: run scripts/setup.sh --test (Debian package docker-registry)"
        );
        let dir = tempfile::Builder::new().prefix("berth-registry-").tempdir().expect("temp dir");
        let port = free_port();
        let mut registry = Registry { dir: Some(dir), child: None, port, token: None };
        let root = registry.dir().to_path_buf();
        let auth_section = match auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Basic { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", &user, &password])
                    .output()
                    .expect("running htpasswd (Debian package apache2-utils)");
                assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
                std::fs::write(root.join("htpasswd"), &out.stdout).expect("writing htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    root.join("htpasswd").display()
                )
            }
            RegistryAuth::Token { user, password } => {
                let service = TokenService::start(&root, &user, &password);
                let section = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    service.realm(),
                    TOKEN_SERVICE_NAME,
                    TOKEN_ISSUER,
                    service.certificate.display()
                );
                registry.token = Some(service);
                section
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-tests\n{auth_section}",
            root.join("data").display()
        );
        std::fs::write(root.join("config.yml"), config).expect("writing the registry config");
        let log = std::fs::File::create(root.join("registry.log")).expect("registry log");
        let mut cmd = Command::new(REGISTRY_BINARY);
        // The registry dies with the test thread that started it, even if Drop never runs.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .arg("serve")
            .arg(root.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        registry.child = Some(child);
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().expect("child").try_wait().expect("try_wait") {
                self.child = None;
                panic!("docker-registry exited with {status}; its log:\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 401") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry not ready after 30 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("registry dir").path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the registry logged (its access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("registry.log")).unwrap_or_default()
    }

    /// How many requests the access log shows with `method` on a path containing `needle`.
    pub fn requests(&self, method: &str, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(&format!("\"{method} ")) && l.contains(needle)).count()
    }

    /// Token requests the token service answered, if there is one.
    pub fn token_requests(&self) -> Vec<String> {
        self.token.as_ref().map(|t| t.requests.lock().unwrap().clone()).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() && self.dir.is_some() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- docker-registry log (last lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        self.token.take();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// The `service` the registry and the token service agree on.
pub const TOKEN_SERVICE_NAME: &str = "berth-test-registry";
/// The `iss` of the tokens.
pub const TOKEN_ISSUER: &str = "berth-test-token-issuer";

/// A token service as distribution's token auth expects one (Docker Hub's auth.docker.io works
/// alike): `GET /token?service=…&scope=…` with Basic credentials answers a JWT signed (ES256)
/// with a key whose self-signed certificate the registry trusts, granting the scopes asked for
/// to the one known user; anonymous requests get a token granting nothing; a wrong password gets
/// 401. Hand-written because no crate offers a distribution token server; rcgen makes the
/// certificate and aws-lc-rs signs.
pub struct TokenService {
    port: u16,
    certificate: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The query strings of the token requests, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl TokenService {
    fn start(dir: &Path, user: &str, password: &str) -> TokenService {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generating a key");
        let params =
            rcgen::CertificateParams::new(vec!["berth-test-token".to_string()]).expect("cert params");
        let cert = params.self_signed(&key).expect("self-signing");
        let certificate = dir.join("token.crt");
        std::fs::write(&certificate, cert.pem()).expect("writing the token certificate");
        let signer = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
        )
        .expect("loading the signing key");
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());

        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token service");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let (stop2, requests2, user) = (stop.clone(), requests.clone(), user.to_string());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        answer_token(stream, &signer, &x5c, &expected, &user, &requests2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TokenService { port, certificate, stop, thread: Some(thread), requests }
    }

    fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a request head: the request line and the headers.
fn read_head(reader: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let request_line = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some((request_line, headers))
}

fn answer_token(
    stream: TcpStream,
    signer: &aws_lc_rs::signature::EcdsaKeyPair,
    x5c: &str,
    expected: &str,
    user: &str,
    requests: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let Some((request_line, headers)) = read_head(&mut reader) else { return };
    let target = request_line.split(' ').nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q).to_string();
    requests.lock().unwrap().push(query.clone());
    let authorization = headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.as_str());
    let mut out = stream;
    let authenticated = match authorization {
        None => false,
        Some(a) if a == expected => true,
        Some(_) => {
            let body = r#"{"details":"incorrect username or password"}"#;
            let _ = write!(
                out,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
    };
    let mut access = Vec::new();
    let mut service = String::new();
    for (k, v) in form_pairs(&query) {
        match k.as_str() {
            "service" => service = v,
            // repository:<name>:<actions>; only an authenticated user gets anything.
            "scope" if authenticated => {
                let mut parts = v.rsplitn(2, ':');
                let actions = parts.next().unwrap_or("");
                let rest = parts.next().unwrap_or("");
                if let Some((kind, name)) = rest.split_once(':') {
                    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
                    access.push(serde_json::json!({"type": kind, "name": name, "actions": actions}));
                }
            }
            _ => {}
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER,
        "sub": if authenticated { user } else { "" },
        "aud": service,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{:x}", rand_u64()),
        "access": access,
    });
    let url = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let signing_input = format!("{}.{}", url(&header), url(&claims));
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let signature = signer.sign(&rng, signing_input.as_bytes()).expect("signing");
    let token = format!(
        "{signing_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.as_ref())
    );
    let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom(&mut b);
    u64::from_le_bytes(b)
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// Decodes `a=b&c=d` (percent-encoding and `+`).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// What the proxy does to blob downloads after the first one it cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCut {
    /// Pass later requests through untouched: a resumed download completes.
    PassThrough,
    /// Cut every later blob download before its first body byte: resuming cannot succeed.
    CutAll,
}

/// What the proxy does to the downloads of the blob it watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The first download is cut after `after` bytes of body; later ones as `then` says.
    Cut { after: u64, then: AfterCut },
    /// Every download has the body byte at `at` flipped (a registry serving corrupt data).
    Flip { at: u64 },
}

/// A TCP proxy in front of a registry, one request per connection (it adds
/// `Connection: close`), that breaks the downloads of one blob: cut short, or corrupted.
pub struct CuttingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Blob GETs seen (with the Range header they carried, if any).
    pub blob_gets: Arc<Mutex<Vec<Option<String>>>>,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    /// The first `GET` of a blob whose path contains `blob` is cut after `cut_after` bytes of
    /// body; what happens to later ones is `after`.
    pub fn start(upstream_port: u16, blob: &str, cut_after: u64, after: AfterCut) -> CuttingProxy {
        Self::with_fault(upstream_port, blob, Fault::Cut { after: cut_after, then: after })
    }

    /// Every `GET` of the blob passes whole, with the body byte at `at` flipped.
    pub fn corrupting(upstream_port: u16, blob: &str, at: u64) -> CuttingProxy {
        Self::with_fault(upstream_port, blob, Fault::Flip { at })
    }

    fn with_fault(upstream_port: u16, blob: &str, fault: Fault) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let blob_gets = Arc::new(Mutex::new(Vec::new()));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (stop2, gets2, cuts2, blob) = (stop.clone(), blob_gets.clone(), cuts.clone(), blob.to_string());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (gets, cuts, blob) = (gets2.clone(), cuts2.clone(), blob.clone());
                        workers.push(std::thread::spawn(move || {
                            let _ = proxy_one(client, upstream_port, &blob, fault, &gets, &cuts);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        CuttingProxy { port, stop, thread: Some(thread), blob_gets, cuts }
    }

    /// `127.0.0.1:<port>`: use it as the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many downloads were cut.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_one(
    client: TcpStream,
    upstream_port: u16,
    blob: &str,
    fault: Fault,
    gets: &Mutex<Vec<Option<String>>>,
    cuts: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let Some((request_line, headers)) = read_head(&mut reader) else { return Ok(()) };
    let length: usize =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let is_blob_get = request_line.starts_with("GET ") && request_line.contains(blob);
    let range = headers.iter().find(|(k, _)| k == "range").map(|(_, v)| v.clone());
    let cut_at = if is_blob_get {
        gets.lock().unwrap().push(range);
        let first = cuts.load(Ordering::SeqCst) == 0;
        match (fault, first) {
            (Fault::Cut { after, .. }, true) => Some(after),
            (Fault::Cut { then: AfterCut::CutAll, .. }, false) => Some(0),
            (Fault::Cut { then: AfterCut::PassThrough, .. }, false) | (Fault::Flip { .. }, _) => None,
        }
    } else {
        None
    };

    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    let mut head = format!("{request_line}\r\n");
    for (k, v) in &headers {
        if k != "connection" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&body)?;
    let mut up = BufReader::new(upstream);
    // The response head passes whole; the body is counted.
    let mut client = client;
    let mut line = String::new();
    loop {
        line.clear();
        if up.read_line(&mut line)? == 0 {
            return Ok(());
        }
        client.write_all(line.as_bytes())?;
        if line == "\r\n" {
            break;
        }
    }
    let mut sent: u64 = 0;
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = up.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut n = n as u64;
        if let (true, Fault::Flip { at }) = (is_blob_get, fault) {
            if (sent..sent + n).contains(&at) {
                buf[(at - sent) as usize] ^= 0x55;
            }
        }
        if let Some(limit) = cut_at {
            if sent + n >= limit {
                n = limit - sent;
                client.write_all(&buf[..n as usize])?;
                client.flush()?;
                cuts.fetch_add(1, Ordering::SeqCst);
                // A reset, not a clean close: the client must see a broken body.
                let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                // SAFETY: a valid socket fd and a correctly sized option value.
                unsafe {
                    libc::setsockopt(
                        std::os::fd::AsRawFd::as_raw_fd(&client),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&linger as *const libc::linger).cast(),
                        std::mem::size_of::<libc::linger>() as libc::socklen_t,
                    );
                }
                return Ok(());
            }
        }
        client.write_all(&buf[..n as usize])?;
        sent += n;
    }
}
