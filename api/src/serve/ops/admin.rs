//! Access administration (admins): users, teams, memberships and API tokens.

use axum::http::StatusCode;
use berth_types::auth::{
    CreateTeam, CreateToken, CreateUser, CreatedToken, Role, Team, Token, UpdateUser, User,
};

use super::{Caller, Input};
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

/// A read of the access database (admins).
async fn read<T>(
    caller: &Caller,
    read: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    caller.require(Role::Admin)?;
    read.await
}

/// A change of the access database (admins), audited.
async fn change<T, F, Fut>(
    state: &AppState,
    caller: &Caller,
    ok: StatusCode,
    change: F,
) -> Result<T, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let result = match caller.require(Role::Admin) {
        Ok(()) => change().await,
        Err(e) => Err(e),
    };
    caller.audited(state, ok, result).await
}

pub async fn list_users(state: &AppState, caller: &Caller) -> Result<Vec<User>, ApiError> {
    read(caller, state.auth.list_users()).await
}

pub async fn user(state: &AppState, caller: &Caller, name: &str) -> Result<User, ApiError> {
    read(caller, state.auth.user(name)).await
}

pub async fn create_user(
    state: &AppState,
    caller: &Caller,
    request: Input<CreateUser>,
) -> Result<User, ApiError> {
    change(state, caller, StatusCode::CREATED, || async {
        let request = request?;
        state.auth.create_user(&request.name, request.password, request.role).await
    })
    .await
}

pub async fn update_user(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Input<UpdateUser>,
) -> Result<User, ApiError> {
    change(state, caller, StatusCode::OK, || async {
        let request = request?;
        state.auth.update_user(name, request.role, request.password).await
    })
    .await
}

pub async fn delete_user(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    change(state, caller, StatusCode::NO_CONTENT, || state.auth.delete_user(name)).await
}

pub async fn list_teams(state: &AppState, caller: &Caller) -> Result<Vec<Team>, ApiError> {
    read(caller, state.auth.list_teams()).await
}

pub async fn create_team(
    state: &AppState,
    caller: &Caller,
    request: Input<CreateTeam>,
) -> Result<Team, ApiError> {
    change(state, caller, StatusCode::CREATED, || async { state.auth.create_team(&request?.name).await })
        .await
}

pub async fn delete_team(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    change(state, caller, StatusCode::NO_CONTENT, || state.auth.delete_team(name)).await
}

pub async fn add_member(state: &AppState, caller: &Caller, team: &str, user: &str) -> Result<Team, ApiError> {
    change(state, caller, StatusCode::OK, || state.auth.add_member(team, user)).await
}

pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    team: &str,
    user: &str,
) -> Result<Team, ApiError> {
    change(state, caller, StatusCode::OK, || state.auth.remove_member(team, user)).await
}

pub async fn list_tokens(state: &AppState, caller: &Caller) -> Result<Vec<Token>, ApiError> {
    read(caller, state.auth.list_tokens()).await
}

/// A token for `request.user`, with the user's role unless the request names one.
pub async fn create_token(
    state: &AppState,
    caller: &Caller,
    request: Input<CreateToken>,
) -> Result<CreatedToken, ApiError> {
    change(state, caller, StatusCode::CREATED, || async {
        let request = request?;
        let role = match request.role {
            Some(r) => r,
            None => state.auth.user(&request.user).await?.role,
        };
        let (token, secret) =
            state.auth.create_token(&request.user, &request.name, role, request.expires_in).await?;
        Ok(CreatedToken { token, secret })
    })
    .await
}

pub async fn delete_token(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    change(state, caller, StatusCode::NO_CONTENT, || state.auth.delete_token(id)).await
}
