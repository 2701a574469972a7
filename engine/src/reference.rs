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
    ///
    /// The grammar is checked by hand rather than with one big regular expression so that each
    /// kind of mistake gets its own message (Docker's regexp only says "invalid reference format").
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError("empty reference: want [domain/]name[:tag][@digest]".into()));
        }
        // Docker refuses a bare 64-hex string as a name: it would shadow an image ID.
        if s.len() == 64 && s.bytes().all(is_lower_hex) {
            return Err(ReferenceError(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError(format!("{s:?} contains the character {c:?}")));
        }

        let (name_and_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(parse_digest(d)?)),
            None => (s, None),
        };

        // The tag separator is the last ':' after the last '/'; a ':' before it belongs to a
        // domain's port.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let (n, t) = name_and_tag.split_at(last_slash + i);
                (n, Some(check_tag(&t[1..])?))
            }
            None => (name_and_tag, None),
        };
        if name.is_empty() {
            return Err(ReferenceError(format!("{s:?} has no repository name")));
        }

        let (domain, path) = split_domain(name);
        let mut domain = domain.to_string();
        let mut path = path.to_string();
        if domain == LEGACY_DEFAULT_DOMAIN {
            domain = DEFAULT_DOMAIN.to_string();
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("{OFFICIAL_NAMESPACE}/{path}");
        }
        if path.is_empty() {
            return Err(ReferenceError(format!("{s:?} has no repository name after the domain")));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError(format!("repository name ({path}) must be lowercase")));
        }
        check_domain(&domain)?;
        check_path(&path)?;
        let name_len = domain.len() + 1 + path.len();
        if name_len > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError(format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters (has {name_len})"
            )));
        }

        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Reference { domain, path, tag, digest })
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

    /// The repository in the short form Docker shows: `busybox`, `user/app`,
    /// `localhost:5000/a/b`.
    pub fn familiar_repository(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.repository();
        }
        match self.path.strip_prefix(OFFICIAL_NAMESPACE).and_then(|p| p.strip_prefix('/')) {
            // Only `library/<name>` is shortened: a nested `library/a/b` keeps its namespace.
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The short form Docker shows: `busybox:latest`, `localhost:5000/a/b:tag`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_ref());
        }
        s
    }

    /// The same repository with tag `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(check_tag(tag)?.to_string()),
            digest: None,
        })
    }

    /// The same repository pinned to `digest` (and no tag): what `repo_digests` lists.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: None, digest: Some(digest) }
    }

    /// The reference without its digest; a reference that had only a digest gets `:latest`.
    pub fn without_digest(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(self.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string())),
            digest: None,
        }
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Docker Hub's old name, normalised to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Longest `domain/path` Docker accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag: the first character plus 127 more.
const TAG_LENGTH_MAX: usize = 128;

fn is_lower_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'f')
}

/// Splits `name` (no tag, no digest) into domain and path like Docker's `splitDockerDomain`: the
/// first component is a domain only if it looks like one (has a `.` or a `:`, is `localhost`, or
/// has upper case, which a path may not); otherwise the name lives on Docker Hub.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_DOMAIN, name),
    }
}

/// `host[:port]` where host is a DNS name (or IPv4 address) or a bracketed IPv6 address.
fn check_domain(domain: &str) -> Result<(), ReferenceError> {
    let bad = |why: &str| Err(ReferenceError(format!("invalid domain {domain:?}: {why}")));
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return bad("missing ']' after the IPv6 address");
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return bad("an IPv6 address in brackets may hold only hex digits and ':'");
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return bad("only ':<port>' may follow ']'"),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        for component in host.split('.') {
            let b = component.as_bytes();
            let ok = !b.is_empty()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-';
            if !ok {
                return bad("each dot-separated part must be letters, digits and inner '-'");
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return bad("the port must be a number");
        }
    }
    Ok(())
}

/// Path components: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, separated by `/`.
fn check_path(path: &str) -> Result<(), ReferenceError> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceError(format!("repository name {path:?} has an empty path component")));
        }
        if !is_path_component(component) {
            return Err(ReferenceError(format!(
                "invalid repository name component {component:?}: want lowercase letters and digits, \
                 separated by '.', '_', '__' or dashes"
            )));
        }
    }
    Ok(())
}

fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        // One run of letters and digits...
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // ...then one separator: '.', '_', '__' or any number of dashes.
        let sep = i;
        while i < b.len() && b[i] == b'-' {
            i += 1;
        }
        if i == sep {
            match &b[i..] {
                [b'_', b'_', ..] => i += 2,
                [b'.' | b'_', ..] => i += 1,
                _ => return false,
            }
        }
    }
}

/// `[\w][\w.-]{0,127}`.
fn check_tag(tag: &str) -> Result<&str, ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if tag.is_empty() {
        return Err(ReferenceError("missing tag after ':'".into()));
    }
    let b = tag.as_bytes();
    if !word(b[0]) || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(ReferenceError(format!(
            "invalid tag {tag:?}: want letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )));
    }
    if tag.len() > TAG_LENGTH_MAX {
        return Err(ReferenceError(format!(
            "invalid tag: must not be more than {TAG_LENGTH_MAX} characters (has {})",
            tag.len()
        )));
    }
    Ok(tag)
}

/// `algorithm:hex`, for the algorithms Docker knows (sha256, sha384, sha512).
fn parse_digest(d: &str) -> Result<Digest, ReferenceError> {
    if d.is_empty() {
        return Err(ReferenceError("missing digest after '@'".into()));
    }
    let digest: Digest = d.parse().map_err(|e| ReferenceError(format!("invalid digest {d:?}: {e}")))?;
    if digest.algorithm().digest_hexlen().is_none() {
        return Err(ReferenceError(format!(
            "unsupported digest algorithm {:?} in {d:?}: want sha256, sha384 or sha512",
            digest.algorithm().as_ref()
        )));
    }
    Ok(digest)
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

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    /// input → (normalised string, familiar form).
    fn valid_cases() -> Vec<(String, String, String)> {
        let d = format!("sha256:{HEX}");
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        let long_name = format!("{}/{}", "a".repeat(100), "b".repeat(144)); // 255 with docker.io/
        let long_tag = format!("t{}", "x".repeat(127));
        let same = |s: &str| (s.to_string(), s.to_string(), s.to_string());
        let c = |input: &str, full: &str, familiar: &str| (input.into(), full.into(), familiar.into());
        vec![
            c("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            c("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            c("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            c("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            c("docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"),
            c("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            c("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
            c("user/app", "docker.io/user/app:latest", "user/app:latest"),
            // Only `library/<name>` is shortened.
            c("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
            c("localhost/app", "localhost/app:latest", "localhost/app:latest"),
            same("localhost:5000/a/b:tag"),
            // A lone `localhost:5000` is the Docker Hub image `localhost` with tag `5000`.
            c("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
            c("localhost", "docker.io/library/localhost:latest", "localhost:latest"),
            c("example.com/app", "example.com/app:latest", "example.com/app:latest"),
            c("127.0.0.1:5000/debian", "127.0.0.1:5000/debian:latest", "127.0.0.1:5000/debian:latest"),
            c("192.168.0.1", "docker.io/library/192.168.0.1:latest", "192.168.0.1:latest"),
            c("192.168.0.1:80", "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
            c("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080"),
            c("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080"),
            same("[::1]:5000/app:v2"),
            c("[2001:db8::1]/repo", "[2001:db8::1]/repo:latest", "[2001:db8::1]/repo:latest"),
            // Upper case marks a domain (paths may not have it).
            c("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
            same("my-registry.io:443/team/app:latest"),
            same("a.b-c--d.io/x:latest"),
            c("user/a.b-c---d__e_f", "docker.io/user/a.b-c---d__e_f:latest", "user/a.b-c---d__e_f:latest"),
            c("app:V1.0_rc-2", "docker.io/library/app:V1.0_rc-2", "app:V1.0_rc-2"),
            c("app:_x", "docker.io/library/app:_x", "app:_x"),
            c(
                &format!("app:{long_tag}"),
                &format!("docker.io/library/app:{long_tag}"),
                &format!("app:{long_tag}"),
            ),
            c(&long_name, &format!("docker.io/{long_name}:latest"), &format!("{long_name}:latest")),
            // 64 hex is refused only as the whole name, as Docker does.
            c(
                &format!("docker.io/{HEX}"),
                &format!("docker.io/library/{HEX}:latest"),
                &format!("{HEX}:latest"),
            ),
            // A digest alone gets no default tag.
            c(&format!("busybox@{d}"), &format!("docker.io/library/busybox@{d}"), &format!("busybox@{d}")),
            c(
                &format!("busybox:1.36@{d}"),
                &format!("docker.io/library/busybox:1.36@{d}"),
                &format!("busybox:1.36@{d}"),
            ),
            same(&format!("localhost:5000/app@{d}")),
            c(
                &format!("busybox@{sha512}"),
                &format!("docker.io/library/busybox@{sha512}"),
                &format!("busybox@{sha512}"),
            ),
        ]
    }

    #[test]
    fn valid_references_normalise_like_docker() {
        for (input, full, familiar) in valid_cases() {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input:?} refused: {e}"));
            assert_eq!(r.to_string(), full, "normalised form of {input:?}");
            assert_eq!(r.familiar(), familiar, "familiar form of {input:?}");
            // Both forms parse back to the same reference.
            assert_eq!(Reference::parse(&full).unwrap(), r, "re-parse of {full:?}");
            assert_eq!(Reference::parse(&familiar).unwrap(), r, "re-parse of {familiar:?}");
        }
    }

    #[test]
    fn invalid_references_are_refused_with_a_clear_message() {
        let d = format!("sha256:{HEX}");
        let too_long = format!("{}/{}", "a".repeat(100), "b".repeat(145)); // 256 with docker.io/
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty reference"),
            (HEX.into(), "cannot specify 64-byte hexadecimal strings"),
            ("Busybox".into(), "repository name (library/Busybox) must be lowercase"),
            ("user/App".into(), "repository name (user/App) must be lowercase"),
            ("localhost:5000/App:v1".into(), "repository name (App) must be lowercase"),
            ("Foo/Bar".into(), "repository name (Bar) must be lowercase"),
            ("busybox:".into(), "missing tag after ':'"),
            ("busybox@".into(), "missing digest after '@'"),
            ("busybox:1@".into(), "missing digest after '@'"),
            ("busybox:-x".into(), "invalid tag \"-x\""),
            ("busybox:.x".into(), "invalid tag \".x\""),
            ("busybox:a/b".into(), "invalid domain \"busybox:a\": the port must be a number"),
            ("busybox:a+b".into(), "invalid tag \"a+b\""),
            (format!("busybox:t{}", "x".repeat(128)), "must not be more than 128 characters"),
            ("busybox@sha256:abc".into(), "invalid digest \"sha256:abc\""),
            (format!("busybox@sha256:{}", HEX.to_uppercase()), "invalid digest"),
            (format!("busybox@md5:{}", "a".repeat(32)), "unsupported digest algorithm \"md5\""),
            (format!("busybox@{d}@{d}"), "invalid digest"),
            ("busybox@latest".into(), "invalid digest \"latest\""),
            (":tag".into(), "has no repository name"),
            (format!("@{d}"), "has no repository name"),
            ("localhost:5000/".into(), "has no repository name after the domain"),
            ("/".into(), "empty path component"),
            ("//".into(), "empty path component"),
            ("foo/bar/".into(), "empty path component"),
            ("docker///docker".into(), "empty path component"),
            ("-docker".into(), "invalid repository name component \"-docker\""),
            ("-docker.io/docker".into(), "invalid domain \"-docker.io\""),
            ("a..b".into(), "invalid repository name component \"a..b\""),
            ("a___b".into(), "invalid repository name component \"a___b\""),
            ("a-_b".into(), "invalid repository name component \"a-_b\""),
            ("a.".into(), "invalid repository name component \"a.\""),
            ("user/a_".into(), "invalid repository name component \"a_\""),
            ("https://github.com/docker/docker".into(), "invalid"),
            ("localhost:port/app".into(), "the port must be a number"),
            ("localhost:/app".into(), "the port must be a number"),
            ("[::1/app".into(), "missing ']'"),
            ("[fe80::1%eth0]:5000/app".into(), "IPv6 address"),
            ("[::1]x/app".into(), "only ':<port>' may follow ']'"),
            ("bad_domain.com/app".into(), "invalid domain \"bad_domain.com\""),
            ("busy box".into(), "contains the character ' '"),
            ("busybox\n".into(), "contains the character '\\n'"),
            (too_long, "must not be more than 255 characters"),
        ];
        for (input, fragment) in cases {
            match Reference::parse(&input) {
                Ok(r) => panic!("{input:?} accepted as {r}"),
                Err(e) => assert!(e.0.contains(fragment), "{input:?}: message {:?} lacks {fragment:?}", e.0),
            }
        }
    }

    #[test]
    fn errors_read_as_invalid_reference_format() {
        let e: crate::Error = Reference::parse("Busybox").unwrap_err().into();
        assert_eq!(
            e.to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn parts_and_helpers() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let r = Reference::parse(&format!("localhost:5000/team/app:v1@{d}")).unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "team/app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(r.repository(), "localhost:5000/team/app");
        assert_eq!(r.familiar_repository(), "localhost:5000/team/app");
        assert_eq!(r.without_digest().to_string(), "localhost:5000/team/app:v1");

        let only_digest = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(only_digest.tag(), None);
        assert_eq!(only_digest.without_digest().to_string(), "docker.io/library/busybox:latest");
        assert_eq!(only_digest.familiar_repository(), "busybox");

        let b = Reference::parse("busybox").unwrap();
        assert_eq!(b.with_tag("1.36").unwrap().familiar(), "busybox:1.36");
        assert!(b.with_tag("-bad").is_err());
        assert_eq!(b.with_digest(d.clone()).to_string(), format!("docker.io/library/busybox@{d}"));
        assert_eq!("busybox:1".parse::<Reference>().unwrap().tag(), Some("1"));
    }
}
