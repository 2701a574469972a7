//! The operations layer: one function per guarded action of the daemon. Each takes the caller
//! ([`Caller`]) and typed input, and in that one place checks the caller's role and the team that
//! owns the object (`access`), calls the engine, records who owns what it made, and writes the
//! audit row of a mutating call. The REST handlers (`routes`), the WebSockets (`ws`) and any
//! other face of the daemon call these functions and nothing else; the middleware in front of
//! them only says who is calling (`auth::identify`).
//!
//! Who may do what:
//! - viewers read (lists, inspect, stats, top, events, history);
//! - operators also act: create, start, stop, remove, pull, push, build, exec, and read what
//!   shows a container's or image's content (logs, attach, exec, save, progress streams);
//! - admins also manage users, teams, tokens, registry credentials, prunes and the audit log,
//!   and reach into the host (bind mounts, added capabilities, the host network, builds from
//!   the daemon's directories).
//!
//! Teams own containers (their creator's team; `X-Berth-Team` picks one), images (pulled,
//! imported, loaded or built by the team; one no team owns is shared: members see and use it,
//! admins change it), volumes (named ones made by the team, anonymous ones with their
//! container; unowned ones are shared as images are) and stacks (through their containers).
//! A member sees only their teams' objects and the shared ones; another team's object answers
//! 404 as if it did not exist.

pub mod access;
pub mod admin;
pub mod build;
pub mod containers;
pub mod distribution;
pub mod images;
pub mod networks;
pub mod pods;
pub mod registries;
pub mod registry;
pub mod search;
pub mod stacks;
pub mod system;
pub mod volumes;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use berth_types::auth::Role;
use berth_types::headers::TEAM_HEADER;

use super::auth::{authentication_required, Api, Principal};
use super::error::ApiError;
use super::events::Outcome;
use super::state::AppState;

/// An operation's input as the caller sent it, maybe malformed: refused only after the caller's
/// role is checked, so that a caller who may not make the call learns nothing from it.
pub type Input<T> = Result<T, ApiError>;

/// Who calls an operation, and through which call: the audit log and refusals name it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The HTTP method and path of the call (for the audit log).
    pub method: String,
    pub path: String,
    /// The team named in `X-Berth-Team`: which of the caller's teams new objects go to.
    pub team: Option<String>,
    /// Which API the call came through (the audit log says).
    pub api: Api,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, Self::Rejection> {
        // `auth::identify` put the caller there; none means no credentials were sent.
        let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
            return Err(authentication_required());
        };
        let team = match parts.headers.get(TEAM_HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| {
                        axum::response::IntoResponse::into_response(ApiError::bad_request(format!(
                            "{TEAM_HEADER}: not text"
                        )))
                    })?
                    .to_string(),
            ),
        };
        let api = parts.extensions.get::<Api>().copied().unwrap_or_default();
        Ok(Caller {
            principal,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            team,
            api,
        })
    }
}

impl Caller {
    /// A caller of `method path` (the daemon's own tasks and the tests).
    pub fn new(principal: Principal, method: &str, path: &str) -> Caller {
        Caller { principal, method: method.into(), path: path.into(), team: None, api: Api::Berth }
    }

    pub fn is_admin(&self) -> bool {
        self.principal.role >= Role::Admin
    }

    /// The IDs of the caller's teams.
    pub fn team_ids(&self) -> Vec<i64> {
        self.principal.teams.iter().map(|(id, _)| *id).collect()
    }

    /// Refuses the call unless the caller has at least the role `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.principal.role >= needed {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "permission denied: {} has the role {}, {} {} needs {}",
            self.principal.user,
            self.principal.role.as_str(),
            self.method,
            self.path,
            needed.as_str()
        )))
    }

    /// The team a new object goes to: the one named in `X-Berth-Team` (which the caller must be
    /// in, unless admin), or the caller's first team. `None`: no team (admins, root), the object
    /// is shared.
    pub async fn target_team(&self, state: &AppState) -> Result<Option<i64>, ApiError> {
        if let Some(name) = &self.team {
            if let Some((id, _)) = self.principal.teams.iter().find(|(_, n)| n == name) {
                return Ok(Some(*id));
            }
            if self.is_admin() {
                return Ok(Some(state.auth.team(name).await?.id));
            }
            return Err(ApiError::forbidden(format!("you are not a member of team {name:?}")));
        }
        if self.is_admin() {
            return Ok(None);
        }
        match self.principal.teams.first() {
            Some((id, _)) => Ok(Some(*id)),
            None => Err(ApiError::forbidden(format!(
                "{} is in no team: an admin must add them to one first",
                self.principal.user
            ))),
        }
    }

    /// Writes the audit row of a mutating call that ended with `status`.
    pub async fn audit(&self, state: &AppState, status: StatusCode) {
        state
            .audit
            .call(self.api.as_str(), &self.principal.user, &self.method, &self.path, status.as_u16())
            .await;
    }

    /// Writes the audit row of a mutating call from its result (`ok`: the status of its success)
    /// and passes the result on.
    pub async fn audited<T>(
        &self,
        state: &AppState,
        ok: StatusCode,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let status = match &result {
            Ok(_) => ok,
            Err(e) => e.status,
        };
        self.audit(state, status).await;
        result
    }
}

/// Records a failed engine operation in the event log (successes come from the engine's own
/// events or the operation's record) and turns it into the answer.
pub(crate) async fn failed(
    state: &AppState,
    kind: &str,
    action: &str,
    subject: &str,
    e: berth_engine::Error,
) -> ApiError {
    state.events.record(kind, action, subject, Outcome::Failure, &e.to_string()).await;
    ApiError::from(e)
}

/// An engine call's result, its failure recorded in the event log (see [`failed`]).
pub(crate) async fn checked<T>(
    state: &AppState,
    kind: &str,
    action: &str,
    subject: &str,
    result: berth_engine::Result<T>,
) -> Result<T, ApiError> {
    match result {
        Ok(value) => Ok(value),
        Err(e) => Err(failed(state, kind, action, subject, e).await),
    }
}

/// Records an operation's outcome in the event log (`success`: the message of a success) and
/// passes the result on.
pub(crate) async fn recorded<T>(
    state: &AppState,
    kind: &str,
    action: &str,
    subject: &str,
    success: &str,
    result: berth_engine::Result<T>,
) -> Result<T, ApiError> {
    let value = checked(state, kind, action, subject, result).await?;
    state.events.record(kind, action, subject, Outcome::Success, success).await;
    Ok(value)
}
#[cfg(test)]
mod tests;
