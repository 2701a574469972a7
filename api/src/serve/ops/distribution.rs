//! The registry server's operations (`--registry-listen`): who may pull, push or delete in a
//! repository, and the pushes and deletions themselves with ownership and audit.
//!
//! A repository belongs to the team of its first push (recorded in `registry_repositories`), or,
//! for one never pushed (images pulled or built on the node), to the teams of its local images;
//! one no team owns is shared. Viewers pull their teams' and shared repositories, operators push
//! to their teams' and make new ones, admins do everything; a repository marked public may be
//! pulled without credentials. Another team's repository is unknown (`NAME_UNKNOWN`) to a pull.

use axum::http::StatusCode;
use berth_engine::distribution::{self as dist, DResult, DistributionError, PushedManifest};
use berth_types::auth::Role;

use super::images::{adopt_image, shared_images};
use super::Caller;
use crate::serve::auth::Principal;
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

/// What a request does in a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    /// Push, and delete (a tag or manifest).
    Push,
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// No credentials (or a token of nobody): the client should authenticate.
    Unauthenticated,
    /// Authenticated, but without the right.
    Denied(String),
    /// Another team's repository: answered as if it did not exist.
    Unknown,
    /// The access database failed.
    Failed(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal::Failed(e)
    }
}

/// Who owns a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// Nothing by that name yet.
    Missing,
    Shared,
    Teams(Vec<i64>),
}

async fn owner(state: &AppState, path: &str) -> Result<(Owner, bool), ApiError> {
    if let Some(row) = state.auth.repository(path).await? {
        let owner = match row.team_id {
            Some(team) => Owner::Teams(vec![team]),
            None => Owner::Shared,
        };
        return Ok((owner, row.public));
    }
    if !dist::exists(&state.engine, path).await {
        return Ok((Owner::Missing, false));
    }
    let mut teams = Vec::new();
    for image in dist::repository_images(&state.engine, path).await {
        teams.extend(state.auth.image_owners(&image).await?);
    }
    teams.sort_unstable();
    teams.dedup();
    Ok((if teams.is_empty() { Owner::Shared } else { Owner::Teams(teams) }, false))
}

/// The team a repository belongs to, or will once the caller pushes it: its owner's, else the
/// caller's (`None`: shared).
async fn repository_team(state: &AppState, caller: &Caller, path: &str) -> Result<Option<i64>, ApiError> {
    Ok(match owner(state, path).await?.0 {
        Owner::Teams(teams) => {
            // Of several teams (images of two teams in one repository), the caller's.
            let mine = teams.iter().find(|t| caller.principal.teams.iter().any(|(id, _)| id == *t));
            Some(*mine.unwrap_or(&teams[0]))
        }
        Owner::Shared => None,
        Owner::Missing => caller.target_team(state).await?,
    })
}

/// Whether `principal` (`None`: anonymous) may do `action` in the repository `path`.
pub async fn authorize(
    state: &AppState,
    principal: Option<&Principal>,
    path: &str,
    action: Action,
) -> Result<(), Refusal> {
    let (owner, public) = owner(state, path).await?;
    if action == Action::Pull && public {
        return Ok(());
    }
    let Some(principal) = principal else { return Err(Refusal::Unauthenticated) };
    if action == Action::Push && principal.role < Role::Operator {
        return Err(Refusal::Denied(format!(
            "{} has the role {}: pushing needs operator",
            principal.user,
            principal.role.as_str()
        )));
    }
    if principal.role >= Role::Admin {
        return Ok(());
    }
    let ours = |teams: &[i64]| principal.teams.iter().any(|(id, _)| teams.contains(id));
    match (owner, action) {
        (Owner::Missing, Action::Pull) => Ok(()),
        (Owner::Missing, Action::Push) if principal.teams.is_empty() => Err(Refusal::Denied(format!(
            "{} is in no team: an admin must add them to one first",
            principal.user
        ))),
        (Owner::Missing, Action::Push) => Ok(()),
        (Owner::Shared, Action::Pull) => Ok(()),
        (Owner::Shared, Action::Push) => Err(Refusal::Denied(format!(
            "repository {path} is shared (no team owns it): only admins change it"
        ))),
        (Owner::Teams(teams), _) if ours(&teams) => Ok(()),
        (Owner::Teams(_), Action::Pull) => Err(Refusal::Unknown),
        (Owner::Teams(_), Action::Push) => {
            Err(Refusal::Denied(format!("repository {path} is another team's")))
        }
    }
}

/// Records a served manifest (a pull) in the history: who pulled `name:reference` (its
/// `digest`) from which address. Only a `GET` is a pull; a `HEAD` only looks.
pub async fn record_pull(
    state: &AppState,
    who: Option<&Principal>,
    request_path: &str,
    address: Option<std::net::IpAddr>,
    name: &str,
    reference: &str,
    digest: &str,
) {
    let user = who.map_or("anonymous", |p| p.user.as_str());
    let address = address.map(|a| a.to_string()).unwrap_or_default();
    let pulled = if reference.contains(':') {
        format!("pull {name}@{reference}")
    } else {
        format!("pull {name}:{reference} ({digest})")
    };
    state.audit.pull(user, request_path, &address, &pulled).await;
}

/// The audit status of a registry answer.
fn status_of(result: &DResult<impl Sized>) -> StatusCode {
    match result {
        Ok(_) => StatusCode::CREATED,
        Err(e) => crate::serve::registry::status_of(e.code),
    }
}

/// Stores a pushed manifest (see `berth_engine::distribution::put_manifest`); a new repository
/// and a new local image go to the caller's team.
pub async fn put_manifest(
    state: &AppState,
    caller: &Caller,
    path: &str,
    reference: &str,
    content_type: Option<String>,
    bytes: Vec<u8>,
) -> DResult<PushedManifest> {
    let result = async {
        let internal = |e: ApiError| DistributionError::new(dist::Code::Internal, e.message);
        let team = repository_team(state, caller, path).await.map_err(internal)?;
        let shared_before = shared_images(state, team).await;
        let pushed = dist::put_manifest(&state.engine, path, reference, content_type, bytes).await?;
        state.auth.add_repository(path, team).await.map_err(internal)?;
        if let (Some(team), Some(image)) = (team, &pushed.image) {
            adopt_image(state, image, team, &shared_before).await;
        }
        Ok(pushed)
    }
    .await;
    caller.audit(state, status_of(&result)).await;
    result
}

/// Deletes a tag or a manifest.
pub async fn delete_manifest(state: &AppState, caller: &Caller, path: &str, reference: &str) -> DResult<()> {
    let result = dist::delete_manifest(&state.engine, path, reference).await;
    let status = match &result {
        Ok(()) => StatusCode::ACCEPTED,
        Err(e) => crate::serve::registry::status_of(e.code),
    };
    caller.audit(state, status).await;
    result
}

/// Completes a blob upload (the digest checked; a mismatch keeps nothing).
pub async fn finish_upload(
    state: &AppState,
    caller: &Caller,
    path: &str,
    id: &str,
    digest: &str,
) -> DResult<String> {
    let result = dist::finish_upload(&state.engine, path, id, digest).await.map(|d| d.to_string());
    caller.audit(state, status_of(&result)).await;
    result
}

/// Marks a repository public (anyone may pull it) or private again: admins, or operators of
/// the team that owns it.
pub async fn set_public(state: &AppState, caller: &Caller, name: &str, public: bool) -> Result<(), ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let path = dist::repository_path(name).map_err(|e| ApiError::bad_request(e.message))?;
        match authorize(state, Some(&caller.principal), &path, Action::Push).await {
            Ok(()) => {}
            Err(Refusal::Failed(e)) => return Err(e),
            Err(Refusal::Unknown) => return Err(ApiError::not_found(format!("no such repository: {name}"))),
            Err(Refusal::Denied(m)) => return Err(ApiError::forbidden(m)),
            Err(Refusal::Unauthenticated) => return Err(ApiError::forbidden("authentication required")),
        }
        if !dist::exists(&state.engine, &path).await {
            return Err(ApiError::not_found(format!("no such repository: {name}")));
        }
        let team = repository_team(state, caller, &path).await?;
        state.auth.set_repository_public(&path, team, public).await
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}
