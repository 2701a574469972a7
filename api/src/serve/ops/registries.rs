//! Registries as objects (`berth registry add/ls/rm`): a name for a registry host, whether it is
//! reached over plain HTTP, and which team may use it. Pull, push and search reach it by its host
//! (`host:port/team/app:1`) with the credentials `berth login` stored for that host. Admins
//! manage them; members see those of their teams and those every team may use.

use axum::http::StatusCode;
use berth_types::auth::Role;
use berth_types::{RegistryCreateRequest, RegistryInfo};

use super::{Caller, Input};
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<RegistryInfo>, ApiError> {
    caller.require(Role::Viewer)?;
    let teams = caller.team_ids();
    let mut out = Vec::new();
    for row in state.auth.list_registries().await? {
        if !caller.is_admin() && row.team_id.is_some_and(|t| !teams.contains(&t)) {
            continue;
        }
        out.push(RegistryInfo {
            logged_in: state.engine.has_credentials(&row.url).await,
            name: row.name,
            url: row.url,
            insecure: row.insecure,
            team: row.team,
            created: row.created,
        });
    }
    Ok(out)
}

pub async fn add(
    state: &AppState,
    caller: &Caller,
    input: Input<RegistryCreateRequest>,
) -> Result<RegistryInfo, ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        let request = input?;
        let name_ok = !request.name.is_empty()
            && request.name.len() <= 64
            && request.name.as_bytes()[0].is_ascii_alphanumeric()
            && request.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !name_ok {
            return Err(ApiError::bad_request(format!(
                "invalid registry name {:?}: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                request.name
            ))
            .with_field("name"));
        }
        let url = berth_engine::registry::normalise_server(&request.url)
            .map_err(|e| ApiError::bad_request(e.to_string()).with_field("url"))?;
        let team_id = match &request.team {
            Some(team) => Some(state.auth.team(team).await?.id),
            None => None,
        };
        state.auth.add_registry(&request.name, &url, request.insecure, team_id).await?;
        apply_insecure(state).await;
        let created = list(state, caller).await?.into_iter().find(|r| r.name == request.name);
        created.ok_or_else(|| ApiError::internal("the registry just added is missing"))
    }
    .await;
    caller.audited(state, StatusCode::CREATED, result).await
}

pub async fn remove(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        state.auth.remove_registry(name).await?;
        apply_insecure(state).await;
        Ok(())
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}

/// Tells the engine which registries added as objects it may reach over plain HTTP (at start,
/// and after each change).
pub async fn apply_insecure(state: &AppState) {
    match state.auth.list_registries().await {
        Ok(rows) => state
            .engine
            .set_insecure_registry_objects(rows.into_iter().filter(|r| r.insecure).map(|r| r.url).collect()),
        Err(e) => tracing::error!(error = %e.message, "reading the registries failed"),
    }
}
