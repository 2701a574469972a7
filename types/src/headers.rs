//! Names of the HTTP headers and cookies the dashboard, the CLI and the daemon share.

/// Which of the caller's teams a new container, image, volume or stack goes to (the caller's
/// first team if absent).
pub const TEAM_HEADER: &str = "x-berth-team";
/// The header a browser page echoes the session's CSRF token in, on every mutating request.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The browser session cookie.
pub const SESSION_COOKIE: &str = "berth_session";
