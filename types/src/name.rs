//! What a name of an object may be, checked in one place for the CLI, the dashboard, compose, the
//! engine and the daemon: containers, volumes and networks follow Docker's rule
//! (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`), compose projects (stacks) Compose's lowercase rule, and the
//! daemon's users, teams and tokens their own. Errors keep Docker's (and Compose's) wording.
//!
//! Pure functions: no I/O, so the dashboard (wasm) runs the same checks.

use std::fmt;

/// What kind of object a name is for; each kind has its rule and its error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// Docker's rule, at least 2 characters; a leading `/` (as `inspect` shows names) is dropped.
    Container,
    /// Docker's rule, 2 to 255 bytes (the name is a directory name).
    Volume,
    /// Docker's characters, 1 to 128 of them.
    Network,
    /// A compose project (a stack): Compose's `^[a-z0-9][a-z0-9_-]*$`.
    Project,
    /// A user of the daemon: 1 to 64 letters, digits, `_`, `-`, `.` or `@`, starting with a
    /// letter or digit (what a shell, a URL and a log line take without quoting).
    User,
    /// A team of the daemon: the rule of [`ObjectKind::User`].
    Team,
    /// An API token's name: the rule of [`ObjectKind::User`].
    Token,
}

impl ObjectKind {
    /// The kind as a word, e.g. `container`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Container => "container",
            ObjectKind::Volume => "volume",
            ObjectKind::Network => "network",
            ObjectKind::Project => "project",
            ObjectKind::User => "user",
            ObjectKind::Team => "team",
            ObjectKind::Token => "token",
        }
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// A character the kind does not allow, a bad first character, or too short.
    InvalidCharacters,
    /// Longer than the kind allows.
    TooLong,
}

/// A name refused by [`check_object_name`]. The field at fault is always the name; `Display`
/// gives the kind's message in Docker's (or Compose's) words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub kind: ObjectKind,
    /// The name as it was given.
    pub name: String,
    pub problem: NameProblem,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match (self.kind, self.problem) {
            (ObjectKind::Container, _) => {
                write!(f, "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            }
            (ObjectKind::Volume, NameProblem::TooLong) => {
                write!(f, "the volume name is longer than {VOLUME_NAME_MAX} characters")
            }
            (ObjectKind::Volume, NameProblem::InvalidCharacters) => write!(
                f,
                "\"{name}\" includes invalid characters for a local volume name, only \
                 \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use \
                 absolute path"
            ),
            (ObjectKind::Network, _) => {
                write!(f, "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            }
            (ObjectKind::Project, _) => write!(
                f,
                "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, \
                 hyphens, and underscores as well as start with a letter or number"
            ),
            (kind @ (ObjectKind::User | ObjectKind::Team | ObjectKind::Token), _) => write!(
                f,
                "invalid {} name {name:?}: 1 to {ACCOUNT_NAME_MAX} letters, digits, '_', '-', '.' or '@', \
                 starting with a letter or digit",
                kind.as_str()
            ),
        }
    }
}

impl std::error::Error for NameError {}

impl NameError {
    /// The message with Docker's `create NAME: ` before it, as its daemon words a refused volume
    /// (a long name cut to 32 characters and `...`).
    pub fn create_message(&self) -> String {
        let shown = match self.problem {
            NameProblem::TooLong => format!("{}...", self.name.chars().take(32).collect::<String>()),
            NameProblem::InvalidCharacters => self.name.clone(),
        };
        format!("create {shown}: {self}")
    }
}

/// The longest volume name: a directory name.
pub const VOLUME_NAME_MAX: usize = 255;
/// The longest network name.
pub const NETWORK_NAME_MAX: usize = 128;
/// The longest user, team or token name.
pub const ACCOUNT_NAME_MAX: usize = 64;

/// Checks `name` against the rule of `kind`. Returns the name as it is stored: a container's
/// without its leading `/`, any other unchanged.
pub fn check_object_name(kind: ObjectKind, name: &str) -> Result<&str, NameError> {
    let plain = match kind {
        ObjectKind::Container => name.strip_prefix('/').unwrap_or(name),
        _ => name,
    };
    // (shortest, longest, allowed first byte, allowed other bytes)
    type Rule = (usize, usize, fn(u8) -> bool, fn(u8) -> bool);
    let docker: Rule = (
        2,
        usize::MAX,
        |b| b.is_ascii_alphanumeric(),
        |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'),
    );
    let (min, max, first_ok, rest_ok): Rule = match kind {
        ObjectKind::Container => docker,
        ObjectKind::Volume => (2, VOLUME_NAME_MAX, docker.2, docker.3),
        ObjectKind::Network => (1, NETWORK_NAME_MAX, docker.2, docker.3),
        ObjectKind::Project => (
            1,
            usize::MAX,
            |b| b.is_ascii_lowercase() || b.is_ascii_digit(),
            |b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'),
        ),
        ObjectKind::User | ObjectKind::Team | ObjectKind::Token => (
            1,
            ACCOUNT_NAME_MAX,
            |b| b.is_ascii_alphanumeric(),
            |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'),
        ),
    };
    let error = |problem| NameError { kind, name: name.to_string(), problem };
    let bytes = plain.as_bytes();
    if bytes.len() > max {
        return Err(error(NameProblem::TooLong));
    }
    let valid = bytes.len() >= min
        && bytes.first().is_some_and(|&b| first_ok(b))
        && bytes.iter().skip(1).all(|&b| rest_ok(b));
    if !valid {
        return Err(error(NameProblem::InvalidCharacters));
    }
    Ok(plain)
}

/// Path segments under `/api/v1/containers/`, `/images/`, `/volumes/` and `/networks/` that name
/// an operation (`POST /api/v1/images/pull`), not an object. An object may still be called so:
/// a client encodes the first letter of such a name in its path (`%70rune`), the router takes
/// the segment for a name, and the checks never mistake one for the other.
pub const RESERVED_SEGMENTS: &[&str] =
    &["prune", "create", "import", "load", "save", "pull", "push", "build", "json", "search"];

/// Whether `segment` (as it stands in a path, before decoding) is one of [`RESERVED_SEGMENTS`].
pub fn is_reserved_segment(segment: &str) -> bool {
    RESERVED_SEGMENTS.contains(&segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: ObjectKind, name: &str) -> String {
        check_object_name(kind, name).unwrap_err().to_string()
    }

    #[test]
    fn containers() {
        assert_eq!(check_object_name(ObjectKind::Container, "/web-1"), Ok("web-1"));
        assert_eq!(check_object_name(ObjectKind::Container, "a.b_c"), Ok("a.b_c"));
        assert_eq!(check_object_name(ObjectKind::Container, "0a"), Ok("0a"));
        for bad in ["", "a", "/", "/a", "//ab", "-x", "_x", ".x", "a/b", "a b", "é1", "aé"] {
            assert_eq!(
                message(ObjectKind::Container, bad),
                format!("Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
                "{bad}"
            );
        }
    }

    #[test]
    fn volumes() {
        for good in ["db", "my_data.v1-2", "0abc", &"a".repeat(64), &"a".repeat(255)] {
            assert_eq!(check_object_name(ObjectKind::Volume, good), Ok(good));
        }
        let long = check_object_name(ObjectKind::Volume, &"a".repeat(256)).unwrap_err();
        assert_eq!(long.problem, NameProblem::TooLong);
        assert_eq!(long.to_string(), "the volume name is longer than 255 characters");
        assert_eq!(
            long.create_message(),
            format!("create {}...: the volume name is longer than 255 characters", "a".repeat(32))
        );
        assert!(check_object_name(ObjectKind::Volume, "a")
            .unwrap_err()
            .create_message()
            .starts_with("create a: \"a\""));
        // Bytes count: 200 two-byte characters are too long.
        assert_eq!(
            check_object_name(ObjectKind::Volume, &"é".repeat(200)).unwrap_err().problem,
            NameProblem::TooLong
        );
        for bad in ["", "a", "-x", "_x", ".x", "a/b", "../x", "a b", "/abs", "x:y", "é1"] {
            assert_eq!(
                message(ObjectKind::Volume, bad),
                format!(
                    "\"{bad}\" includes invalid characters for a local volume name, only \
                     \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
                     use absolute path"
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn networks() {
        for good in ["a", "my_net-1.a", &"n".repeat(128)] {
            assert_eq!(check_object_name(ObjectKind::Network, good), Ok(good));
        }
        for bad in ["", "-x", ".x", "a b", "é", &"n".repeat(129)] {
            assert_eq!(
                message(ObjectKind::Network, bad),
                format!("invalid network name {bad:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            );
        }
    }

    #[test]
    fn projects() {
        for good in ["a", "app", "my_app-2", "0x"] {
            assert_eq!(check_object_name(ObjectKind::Project, good), Ok(good));
        }
        for bad in ["", "App", "-a", "_a", "a.b", "a b", "é"] {
            assert_eq!(
                message(ObjectKind::Project, bad),
                format!(
                    "invalid project name {bad:?}: must consist only of lowercase alphanumeric characters, \
                     hyphens, and underscores as well as start with a letter or number"
                )
            );
        }
    }

    #[test]
    fn users_teams_and_tokens() {
        for good in ["a", "alice@example.org", "ci-token_1.x", &"u".repeat(64)] {
            assert_eq!(check_object_name(ObjectKind::User, good), Ok(good));
        }
        for (kind, word) in
            [(ObjectKind::User, "user"), (ObjectKind::Team, "team"), (ObjectKind::Token, "token")]
        {
            for bad in ["", "@a", ".a", "a b", "a/b", "é", &"u".repeat(65)] {
                assert_eq!(
                    message(kind, bad),
                    format!(
                        "invalid {word} name {bad:?}: 1 to 64 letters, digits, '_', '-', '.' or '@', starting \
                         with a letter or digit"
                    )
                );
            }
        }
    }

    #[test]
    fn reserved_segments() {
        for word in ["prune", "create", "import", "load", "save", "pull", "push", "build", "json"] {
            assert!(is_reserved_segment(word), "{word}");
        }
        assert!(!is_reserved_segment("web"));
        assert!(!is_reserved_segment("%70rune"), "an encoded name is a name");
    }
}
