//! The names of the HTTP headers and the cookie that the daemon and its clients (the dashboard,
//! the CLI) both use. Header names are lowercase, as HTTP/2 sends them; HTTP/1 compares them
//! case-insensitively.

/// The browser session cookie, set by `POST /api/v1/auth/login` (HttpOnly: a page never reads
/// it, the browser sends it).
pub const SESSION_COOKIE: &str = "berth_session";

/// The header a browser page echoes its session's CSRF token in, on every mutating request
/// (the token comes with the session, `csrf_token`).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Which of the caller's teams owns what the request creates (a container, an image, a stack);
/// without it, the caller's first team.
pub const TEAM_HEADER: &str = "x-berth-team";
