//! Access on the wire: browser login and the session, users, teams, roles and API tokens
//! (`/api/v1/auth/*`, `/api/v1/users`, `/api/v1/teams`, `/api/v1/tokens`).

use serde::{Deserialize, Serialize};

/// What a caller may do. Ordered: each role can do all that the one before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read: lists, inspect, stats, events, history.
    Viewer,
    /// Run and act on containers, logs, exec, attach, pull, push, build.
    Operator,
    /// Users, teams, tokens, registry credentials, prune, and all teams' resources.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The name the API takes and shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `s` (as [`Role::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The unix socket: root.
    Socket,
    Token,
    Session,
}

/// `POST /api/v1/auth/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// `GET /api/v1/auth/session` and the answer to login: who is logged in, and the CSRF token a
/// page sends back in `X-CSRF-Token` on every mutating request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    pub user: String,
    pub role: Role,
    pub teams: Vec<String>,
    pub via: Via,
    /// Only for a browser session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// Names of the user's teams.
    pub teams: Vec<String>,
    pub created: String,
}

/// A team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Team {
    pub id: i64,
    pub name: String,
    /// Names of its members.
    pub members: Vec<String>,
    pub created: String,
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    pub id: i64,
    pub user: String,
    pub name: String,
    pub role: Role,
    pub created: String,
    pub last_used: Option<String>,
    /// When the token stops working (RFC 3339); absent: never.
    #[serde(default)]
    pub expires: Option<String>,
}

/// `POST /api/v1/users`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    pub role: Role,
    /// 8 to 1024 characters; without one, the user can only use API tokens.
    pub password: Option<String>,
}

/// `PATCH /api/v1/users/{name}`: what is absent stays as it is.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// 8 to 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `POST /api/v1/teams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Whose token it is.
    pub user: String,
    /// What it is for (`ci`, `deploy`, ...).
    pub name: String,
    /// At most the user's role; the user's role if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Seconds from now until the token stops working (at most 10 years); never if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// A new token: the secret is in this answer once and never again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    pub secret: String,
}

// Passwords and secrets never reach a log line: Debug shows that they are there, not what.
fn redacted(secret: &Option<String>) -> &'static str {
    if secret.is_some() {
        "Some(<redacted>)"
    } else {
        "None"
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl std::fmt::Debug for UpdateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateUser")
            .field("role", &self.role)
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken").field("token", &self.token).field("secret", &"<redacted>").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_names() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let login = LoginRequest { username: "a".into(), password: "hunter22".into() };
        let user = CreateUser { name: "a".into(), role: Role::Viewer, password: Some("hunter22".into()) };
        let update = UpdateUser { role: None, password: Some("hunter22".into()) };
        for shown in [format!("{login:?}"), format!("{user:?}"), format!("{update:?}")] {
            assert!(!shown.contains("hunter22") && shown.contains("redacted"), "{shown}");
        }
    }

    #[test]
    fn requests_refuse_unknown_fields() {
        let e = serde_json::from_str::<CreateTeam>(r#"{"name":"a","colour":"red"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let update: UpdateUser = serde_json::from_str(r#"{"role":"admin"}"#).unwrap();
        assert_eq!(update, UpdateUser { role: Some(Role::Admin), password: None });
    }
}
