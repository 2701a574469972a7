//! Routes of access: browser login/logout and the current session, and (admins) users, teams,
//! memberships and API tokens.

use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_types::auth::{
    CreateTeam, CreateToken, CreateUser, CreatedToken, LoginRequest, SessionInfo, Team, Token, UpdateUser,
    User,
};

use berth_types::headers::SESSION_COOKIE;

use crate::serve::auth::store::SESSION_LIFETIME_SECS;
use crate::serve::auth::throttle::Subject;
use crate::serve::auth::{
    authentication_required, check_throttle, client_address, cookie, throttled, Attempt, CsrfMissing,
    Principal, Transport, Via,
};
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::openapi::ErrorBody;
use crate::serve::ops::{admin, Caller};
use crate::serve::state::AppState;

fn session_info(p: &Principal, csrf: Option<String>) -> SessionInfo {
    SessionInfo {
        user: p.user.clone(),
        role: p.role,
        teams: p.teams.iter().map(|(_, n)| n.clone()).collect(),
        via: p.via,
        csrf_token: csrf,
    }
}

/// Logs in with a password and sets the session cookie: HttpOnly (no script reads it),
/// SameSite=Strict (no other site sends it), Secure when the API is on TLS. Failures are
/// throttled per user name and per client address (`serve::auth::throttle`): an attempt too
/// soon after the last failures is refused with `429` and `Retry-After` before the password is
/// checked. Logins and failures are audited with the client's address.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SessionInfo, description = "logged in; the session cookie is set"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many failures: wait for Retry-After seconds")))]
pub async fn login(
    State(state): State<AppState>,
    transport: Option<Extension<Transport>>,
    request_parts: axum::http::request::Parts,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let address = client_address(&request_parts.extensions);
    let user = Subject::User(request.username.clone());
    let subjects: Vec<Subject> = std::iter::once(user.clone()).chain(address.map(Subject::address)).collect();
    if let Err(refusal) = check_throttle(&state, &subjects) {
        return Ok(throttled(refusal));
    }
    let attempt = Attempt {
        api: crate::serve::auth::Api::Berth,
        user: &request.username,
        method: "POST",
        path: "/api/v1/auth/login",
        address,
    };
    let Some((secret, csrf, principal)) = state.auth.login(&request.username, &request.password).await?
    else {
        attempt.failed(&state, &subjects, "wrong user name or password").await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong user name or password"));
    };
    state.auth.throttle.succeeded(&user);
    attempt.audit(&state, StatusCode::OK, "logged in").await;
    let secure = matches!(transport.map(|t| t.0), Some(Transport::Tcp { tls: true }));
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_LIFETIME_SECS}{}",
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(session_info(&principal, Some(csrf))).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(response)
}

/// Ends the browser session (its cookie is cleared).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "logged out"), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    without_csrf: Option<Extension<CsrfMissing>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    // A logout needs no CSRF token: a page that logs the user out does no harm.
    let Some(principal) = principal.map(|p| p.0).or(without_csrf.map(|p| p.0 .0)) else {
        return Ok(authentication_required());
    };
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        state.auth.logout(&secret).await?;
    }
    Caller::new(principal, "POST", "/api/v1/auth/logout").audit(&state, StatusCode::NO_CONTENT).await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"))
            .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(response)
}

/// Who the caller is; for a browser session, also its CSRF token.
#[utoipa::path(get, path = "/api/v1/auth/session", tag = "auth",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn session(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
) -> Result<Json<SessionInfo>, ApiError> {
    let principal = caller.principal;
    let csrf = match (principal.via, cookie(&headers, SESSION_COOKIE)) {
        (Via::Session, Some(secret)) => state.auth.session(&secret).await?.map(|(_, csrf)| csrf),
        _ => None,
    };
    Ok(Json(session_info(&principal, csrf)))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_users(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(admin::list_users(&state, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<CreateUser>, ApiError>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = admin::create_user(&state, &caller, request.map(|b| b.0)).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(admin::user(&state, &caller, &name).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/{name}", tag = "users", request_body = UpdateUser,
    params(("name" = String, Path)),
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    request: Result<ApiJson<UpdateUser>, ApiError>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(admin::update_user(&state, &caller, &name, request.map(|b| b.0)).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::delete_user(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "teams",
    responses((status = 200, body = Vec<Team>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_teams(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Team>>, ApiError> {
    Ok(Json(admin::list_teams(&state, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = CreateTeam,
    responses((status = 201, body = Team), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<CreateTeam>, ApiError>,
) -> Result<(StatusCode, Json<Team>), ApiError> {
    Ok((StatusCode::CREATED, Json(admin::create_team(&state, &caller, request.map(|b| b.0)).await?)))
}

#[utoipa::path(delete, path = "/api/v1/teams/{name}", tag = "teams",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_team(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::delete_team(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/teams/{name}/members/{user}", tag = "teams",
    params(("name" = String, Path), ("user" = String, Path)),
    responses((status = 200, body = Team), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, user)): Path<(String, String)>,
) -> Result<Json<Team>, ApiError> {
    Ok(Json(admin::add_member(&state, &caller, &team, &user).await?))
}

#[utoipa::path(delete, path = "/api/v1/teams/{name}/members/{user}", tag = "teams",
    params(("name" = String, Path), ("user" = String, Path)),
    responses((status = 200, body = Team), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, user)): Path<(String, String)>,
) -> Result<Json<Team>, ApiError> {
    Ok(Json(admin::remove_member(&state, &caller, &team, &user).await?))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<Token>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Token>>, ApiError> {
    Ok(Json(admin::list_tokens(&state, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<CreateToken>, ApiError>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    Ok((StatusCode::CREATED, Json(admin::create_token(&state, &caller, request.map(|b| b.0)).await?)))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::bad_request(format!("invalid token id {id:?}")))?;
    admin::delete_token(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
