//! The engine's error type. Messages are lowercase, say what failed and on what, and never end
//! with a period, so callers can prefix or wrap them.

use std::io;
use std::path::PathBuf;

use oci_spec::image::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name that is not a valid image reference.
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    /// No image by that name, ID or ID prefix (Docker's wording).
    #[error("No such image: {0}")]
    ImageNotFound(String),
    /// No container by that name, ID or ID prefix (Docker's wording).
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    /// No volume by that name (Docker's wording).
    #[error("No such volume: {0}")]
    VolumeNotFound(String),
    /// A volume that a container's config mounts cannot be removed (Docker's wording).
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse { name: String, containers: Vec<String> },
    /// No network by that name, ID or ID prefix (Docker's wording).
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// No such path in a container's file system (`cp`; Docker's wording).
    #[error("Could not find the file {path} in container {container}")]
    PathNotFound { path: String, container: String },
    /// No compose project (stack) by that name: no containers carry its label.
    #[error("no such stack: {0}")]
    StackNotFound(String),
    /// Content did not hash to the digest it was announced with.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("blob {0} not found in the content store")]
    BlobNotFound(Digest),
    /// The operation would break something that is in use (an image used by a container, ...).
    /// The message is Docker's whole sentence: Docker prefixes some with `conflict: ` (images)
    /// and not others (containers, networks), so the variant adds nothing.
    #[error("{0}")]
    Conflict(String),
    /// A layer tar entry that would touch the host outside the target, or is not allowed.
    #[error("unsafe layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    /// Refused because of how the object is set up (a read-only root filesystem, ...).
    #[error("{0}")]
    Forbidden(String),
    /// Bad input from the caller: a malformed archive, manifest, `--change`, ...
    #[error("{0}")]
    InvalidInput(String),
    /// Bad input in one field of the caller's request (`name`, `mounts`, ...), so that a form
    /// can show the message beside that field.
    #[error("{message}")]
    InvalidField { field: &'static str, message: String },
    /// Input in a format or media type the engine does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The container's command could not be executed: Docker's exit code (127 not found, 126
    /// not executable) and message, e.g. `exec: "nope": executable file not found in $PATH`.
    #[error("{message}")]
    CommandFailed { exit_code: i32, message: String },
    /// An OCI runtime failed to set up or control a container (namespaces, mounts, cgroups, a
    /// failing runc/crun).
    #[error("runtime: {0}")]
    Runtime(String),
    /// The external OCI runtime (runc, crun) has no container by that ID: it was never created
    /// or is deleted already.
    #[error("runtime: {0}")]
    RuntimeNoSuchContainer(String),
    /// The external OCI runtime's container has no process left to signal.
    #[error("runtime: {0}")]
    RuntimeNotRunning(String),
    /// No monitor answers on the container's socket: it exited, or is exiting.
    #[error("runtime: the container's monitor is not running ({})", .0.display())]
    MonitorGone(PathBuf),
    /// A registry refused or failed a request (pull, push, login); `kind` says how to answer.
    #[error("{message}")]
    Registry { message: String, kind: ErrorKind },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// How a caller (the API) should classify an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidInput,
    Conflict,
    /// Not allowed on this object as it is set up (HTTP 403).
    Forbidden,
    Internal,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ImageNotFound(_)
            | Error::ContainerNotFound(_)
            | Error::VolumeNotFound(_)
            | Error::NetworkNotFound(_)
            | Error::StackNotFound(_)
            | Error::PathNotFound { .. } => ErrorKind::NotFound,
            Error::InvalidReference(_)
            | Error::DigestMismatch { .. }
            | Error::UnsafeEntry { .. }
            | Error::InvalidInput(_)
            | Error::InvalidField { .. }
            | Error::Unsupported(_)
            | Error::CommandFailed { .. } => ErrorKind::InvalidInput,
            Error::Conflict(_) | Error::VolumeInUse { .. } => ErrorKind::Conflict,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::BlobNotFound(_)
            | Error::Runtime(_)
            | Error::RuntimeNoSuchContainer(_)
            | Error::RuntimeNotRunning(_)
            | Error::MonitorGone(_)
            | Error::Io { .. } => ErrorKind::Internal,
            Error::Registry { kind, .. } => *kind,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }
}

/// `invalid signal: X`, bad input wherever a signal comes from.
impl From<berth_types::signal::InvalidSignal> for Error {
    fn from(e: berth_types::signal::InvalidSignal) -> Error {
        Error::InvalidInput(e.to_string())
    }
}

/// Adds a description of what was being done to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
