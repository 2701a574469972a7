//! Image references, parsed and normalised the way Docker does it:
//! `busybox` → `docker.io/library/busybox:latest`, `localhost:5000/a/b:tag`, `name@sha256:…`.
//! Grammar: github.com/distribution/reference (reference.go, normalize.go).

use std::fmt;

use oci_spec::image::Digest;

/// The registry short names resolve to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The namespace one-component names on the default registry live in.
pub const OFFICIAL_NAMESPACE: &str = "library";
pub const DEFAULT_TAG: &str = "latest";

/// A fully normalised image reference: always a domain and a path; a tag, a digest, or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid reference; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(pub String);

impl From<ReferenceError> for crate::Error {
    fn from(e: ReferenceError) -> Self {
        crate::Error::InvalidReference(e.0)
    }
}

impl Reference {
    /// Parses and normalises. Adds `docker.io`, `library/` and `:latest` (the latter only when
    /// there is neither tag nor digest), as Docker does.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let _ = s;
        todo!("reference parsing")
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form Docker shows: `busybox:latest`, `localhost:5000/a/b:tag`.
    pub fn familiar(&self) -> String {
        todo!("familiar form")
    }
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/busybox:latest`, `repo@sha256:…`, or
    /// `repo:tag@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}
