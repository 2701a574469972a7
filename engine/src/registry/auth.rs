//! Registry credentials and authentication challenges.
//!
//! Credentials live in `<root>/registry/auth.json`, in the shape of Docker's `config.json`
//! (`{"auths": {"<server>": {"auth": "<base64 user:password>"}}}`), readable by root only
//! (mode 0600, in a 0700 directory). They are never logged: every type holding a secret has a
//! `Debug` that prints `<redacted>` instead.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;

/// A user name and password (or access token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Clone, Serialize, Deserialize)]
struct AuthEntry {
    auth: String,
}

/// The credentials file.
pub struct CredentialStore {
    path: PathBuf,
    /// Serialises read-modify-write cycles of the file, and holds what it last read or wrote:
    /// every registry request asks for credentials, and the async reactor should not read a
    /// file each time.
    lock: Mutex<Option<AuthFile>>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// The store under `<root>/registry/`; the directory is created (0700) on first write.
    pub fn new(root: &Path) -> CredentialStore {
        CredentialStore { path: root.join("registry").join("auth.json"), lock: Mutex::new(None) }
    }

    fn read(&self) -> Result<AuthFile> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                // serde's message may quote the file's content; say only where it broke.
                Error::InvalidInput(format!(
                    "corrupt credentials file {} (line {}, column {})",
                    self.path.display(),
                    e.line(),
                    e.column()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AuthFile::default()),
            Err(e) => Err(Error::io(format!("reading {}", self.path.display()), e)),
        }
    }

    /// The credentials stored for `server`, if any.
    pub fn get(&self, server: &str) -> Result<Option<Credentials>> {
        let mut cached = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = match &*cached {
            Some(file) => file,
            None => cached.insert(self.read()?),
        };
        let Some(entry) = file.auths.get(server) else { return Ok(None) };
        let bad =
            || Error::InvalidInput(format!("corrupt credentials for {server} in {}", self.path.display()));
        let raw = base64::engine::general_purpose::STANDARD.decode(&entry.auth).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (username, password) = raw.split_once(':').ok_or_else(bad)?;
        Ok(Some(Credentials { username: username.to_string(), password: password.to_string() }))
    }

    /// Stores (or replaces) the credentials for `server`.
    pub fn set(&self, server: &str, credentials: &Credentials) -> Result<()> {
        let mut cached = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.read()?;
        let raw = format!("{}:{}", credentials.username, credentials.password);
        file.auths.insert(
            server.to_string(),
            AuthEntry { auth: base64::engine::general_purpose::STANDARD.encode(raw) },
        );
        self.write(&file)?;
        *cached = Some(file);
        Ok(())
    }

    /// Removes the credentials for `server`; returns whether there were any.
    pub fn remove(&self, server: &str) -> Result<bool> {
        let mut cached = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.read()?;
        let removed = file.auths.remove(server).is_some();
        if removed {
            self.write(&file)?;
        }
        *cached = Some(file);
        Ok(removed)
    }

    /// Writes the file atomically with mode 0600 from its creation on (fsutil::write_atomic
    /// leaves the mode to the umask, which would make the secrets readable for a moment).
    fn write(&self, file: &AuthFile) -> Result<()> {
        let dir = self.path.parent().expect("the credentials file has a directory");
        fsutil::create_private_dir(dir)?;
        let bytes = serde_json::to_vec_pretty(file).expect("credentials serialise");
        let tmp = dir.join(format!(".auth.json.tmp-{:016x}", rand::random::<u64>()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .context(|| format!("creating {}", tmp.display()))?;
            f.set_permissions(fs::Permissions::from_mode(0o600))
                .context(|| format!("setting the mode of {}", tmp.display()))?;
            f.write_all(&bytes).context(|| format!("writing {}", tmp.display()))?;
            f.sync_all().context(|| format!("syncing {}", tmp.display()))?;
            fs::rename(&tmp, &self.path).context(|| format!("renaming into {}", self.path.display()))?;
            fsutil::sync_dir(dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// What a registry asks for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses a `WWW-Authenticate` header value: `Basic realm="…"` or
/// `Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-params, quoted or not). Unknown
/// schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `a="x, y",b=z` → {a: "x, y", b: "z"}; names are lowercased.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(name, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=http://127.0.0.1:1/t, service=svc"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("svc".into()),
                scope: None
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None, "a bearer challenge needs a realm");
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn credentials_round_trip_in_a_private_file_and_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
        let creds = Credentials { username: "alice".into(), password: "s3cr:et".into() };
        store.set("localhost:5000", &creds).unwrap();
        assert_eq!(store.get("localhost:5000").unwrap(), Some(creds.clone()));
        let mode = fs::metadata(dir.path().join("registry/auth.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{creds:?}").contains("s3cr"));
        assert!(store.remove("localhost:5000").unwrap());
        assert!(!store.remove("localhost:5000").unwrap());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
    }
}
