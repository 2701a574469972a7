//! Users, teams, memberships, API tokens, sessions and resource ownership in SQLite (the
//! daemon's `berth.db`, schema in `migrations/0002_auth_history.sql`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use berth_types::name::{check_object_name, ObjectKind};
use chrono::{Duration, SecondsFormat, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};

use super::throttle::Throttle;
use super::{Principal, Role, Team, Token, User, Via};
use crate::serve::error::ApiError;

/// How long a browser session lasts after login at most (its absolute expiry; the cookie's
/// Max-Age says the same, [`SESSION_LIFETIME_SECS`]).
const SESSION_LIFETIME: Duration = Duration::hours(12);
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;
/// A session without a request for this long is over (its idle expiry).
const SESSION_IDLE: Duration = Duration::hours(1);
/// A session's `last_seen` and a token's `last_used` are written at most this often: not one
/// database write per request.
const LAST_SEEN_STEP: Duration = Duration::minutes(1);
/// The longest lifetime an API token may be given (`expires_in`).
pub const TOKEN_MAX_LIFETIME_SECS: u64 = 10 * 366 * 24 * 3600;
/// Prefix of API tokens, so that a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "berth_";

/// The access database.
#[derive(Clone)]
pub struct AuthStore {
    pool: SqlitePool,
    /// Failed logins and tokens, per user and per address (in memory, see `throttle`).
    pub throttle: std::sync::Arc<Throttle>,
}

/// What an API token turned out to be.
#[derive(Debug)]
pub enum TokenCheck {
    Valid(Principal),
    /// No such token (never made, or revoked).
    Unknown,
    /// The token of this user expired.
    Expired(String),
}

#[cfg(test)]
impl TokenCheck {
    /// Who, if the token is valid.
    pub fn principal(self) -> Option<Principal> {
        match self {
            TokenCheck::Valid(p) => Some(p),
            TokenCheck::Unknown | TokenCheck::Expired(_) => None,
        }
    }
}

/// A time as the database stores it: RFC 3339 UTC with a fixed format, so it sorts as text.
fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn now() -> String {
    stamp(Utc::now())
}

fn db_error(e: sqlx::Error) -> ApiError {
    ApiError::internal(format!("access database: {e}"))
}

/// A role as the database stores it (its CHECK constraint allows only the three names).
fn stored_role(name: &str) -> Result<Role, ApiError> {
    Role::parse(name).ok_or_else(|| ApiError::internal(format!("access database: unknown role {name:?}")))
}

/// 256 random bits, hex.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Tokens and session ids are random, so SHA-256 is enough to keep them unusable if the
/// database leaks; argon2 is for passwords, which people choose.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id (off the reactor: it takes tens of milliseconds by design).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::internal(format!("salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| ApiError::internal(format!("hashing a password: {e}")))?
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// User, team and token names (`berth_types::name`'s rule for them).
fn check_name(kind: ObjectKind, name: &str) -> Result<(), ApiError> {
    check_object_name(kind, name).map(drop).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.len() < 8 || password.len() > 1024 {
        return Err(ApiError::bad_request("a password must have 8 to 1024 characters"));
    }
    Ok(())
}

impl AuthStore {
    pub fn new(pool: SqlitePool) -> AuthStore {
        AuthStore { pool, throttle: Default::default() }
    }

    /// On first start (no user yet) creates the admin account `admin`, with `password` or a
    /// generated one, which is returned so that the daemon prints it once. Also registers
    /// `token` (from `BERTH_ADMIN_TOKEN`) as an admin API token if it is not known yet: how
    /// automation and tests get in without a login.
    pub async fn bootstrap(
        &self,
        password: Option<String>,
        token: Option<String>,
    ) -> Result<Option<String>, String> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| format!("reading users: {e}"))?;
        let mut generated = None;
        if users == 0 {
            let password = match password {
                Some(p) => {
                    check_password(&p).map_err(|e| format!("BERTH_ADMIN_PASSWORD: {}", e.message))?;
                    p
                }
                None => {
                    let p = random_secret()[..24].to_string();
                    generated = Some(p.clone());
                    p
                }
            };
            self.create_user("admin", Some(password), Role::Admin).await.map_err(|e| e.message)?;
        }
        if let Some(token) = token {
            if !token.starts_with(TOKEN_PREFIX) || token.len() < TOKEN_PREFIX.len() + 32 {
                return Err(format!(
                    "BERTH_ADMIN_TOKEN must start with {TOKEN_PREFIX:?} and have at least 32 more characters"
                ));
            }
            let known: Option<i64> = sqlx::query_scalar("SELECT id FROM tokens WHERE token_hash = ?")
                .bind(secret_hash(&token))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| format!("reading tokens: {e}"))?;
            if known.is_none() {
                let admin: i64 =
                    sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' ORDER BY id LIMIT 1")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| format!("finding the admin: {e}"))?;
                sqlx::query(
                    "INSERT INTO tokens (user_id, name, token_hash, role, created) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(admin)
                .bind("BERTH_ADMIN_TOKEN")
                .bind(secret_hash(&token))
                .bind(Role::Admin.as_str())
                .bind(now())
                .execute(&self.pool)
                .await
                .map_err(|e| format!("storing BERTH_ADMIN_TOKEN: {e}"))?;
            }
        }
        Ok(generated)
    }

    // --- users -------------------------------------------------------------------------------

    pub async fn create_user(
        &self,
        name: &str,
        password: Option<String>,
        role: Role,
    ) -> Result<User, ApiError> {
        check_name(ObjectKind::User, name)?;
        let hash = match password {
            Some(p) => {
                check_password(&p)?;
                Some(hash_password(p).await?)
            }
            None => None,
        };
        let created = now();
        let result =
            sqlx::query("INSERT INTO users (name, password_hash, role, created) VALUES (?, ?, ?, ?)")
                .bind(name)
                .bind(hash)
                .bind(role.as_str())
                .bind(&created)
                .execute(&self.pool)
                .await;
        match result {
            Ok(r) => Ok(User {
                id: r.last_insert_rowid(),
                name: name.to_string(),
                role,
                teams: Vec::new(),
                created,
            }),
            Err(e) if is_unique_violation(&e) => Err(conflict(format!("user {name:?} already exists"))),
            Err(e) => Err(db_error(e)),
        }
    }

    pub async fn list_users(&self) -> Result<Vec<User>, ApiError> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, u.role, u.created, \
             (SELECT group_concat(t.name, ',') FROM memberships m JOIN teams t ON t.id = m.team_id \
              WHERE m.user_id = u.id) AS teams \
             FROM users u ORDER BY u.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                let teams: Option<String> = row.try_get("teams").map_err(db_error)?;
                let mut teams: Vec<String> = teams
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                teams.sort();
                Ok(User {
                    id: row.try_get("id").map_err(db_error)?,
                    name: row.try_get("name").map_err(db_error)?,
                    role: stored_role(&row.try_get::<String, _>("role").map_err(db_error)?)?,
                    teams,
                    created: row.try_get("created").map_err(db_error)?,
                })
            })
            .collect()
    }

    pub async fn user(&self, name: &str) -> Result<User, ApiError> {
        self.list_users()
            .await?
            .into_iter()
            .find(|u| u.name == name)
            .ok_or_else(|| ApiError::not_found(format!("no such user: {name}")))
    }

    /// Changes a user's role and/or password.
    pub async fn update_user(
        &self,
        name: &str,
        role: Option<Role>,
        password: Option<String>,
    ) -> Result<User, ApiError> {
        let user = self.user(name).await?;
        if let Some(role) = role {
            if user.role == Role::Admin && role != Role::Admin {
                self.keep_one_admin(user.id).await?;
            }
            sqlx::query("UPDATE users SET role = ? WHERE id = ?")
                .bind(role.as_str())
                .bind(user.id)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        if let Some(password) = password {
            check_password(&password)?;
            let hash = hash_password(password).await?;
            sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
                .bind(hash)
                .bind(user.id)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
            // A new password logs the user out everywhere.
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(user.id)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        self.user(name).await
    }

    /// Refuses to remove or demote the last admin: nobody could manage users afterwards
    /// (except root on the socket, but a locked-out browser team is a support call).
    async fn keep_one_admin(&self, user_id: i64) -> Result<(), ApiError> {
        let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND id != ?")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        if others == 0 {
            return Err(conflict("the last admin cannot be removed or demoted"));
        }
        Ok(())
    }

    pub async fn delete_user(&self, name: &str) -> Result<(), ApiError> {
        let user = self.user(name).await?;
        if user.role == Role::Admin {
            self.keep_one_admin(user.id).await?;
        }
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(user.id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    // --- teams -------------------------------------------------------------------------------

    pub async fn create_team(&self, name: &str) -> Result<Team, ApiError> {
        check_name(ObjectKind::Team, name)?;
        let created = now();
        match sqlx::query("INSERT INTO teams (name, created) VALUES (?, ?)")
            .bind(name)
            .bind(&created)
            .execute(&self.pool)
            .await
        {
            Ok(r) => {
                Ok(Team { id: r.last_insert_rowid(), name: name.to_string(), members: Vec::new(), created })
            }
            Err(e) if is_unique_violation(&e) => Err(conflict(format!("team {name:?} already exists"))),
            Err(e) => Err(db_error(e)),
        }
    }

    pub async fn list_teams(&self) -> Result<Vec<Team>, ApiError> {
        let rows = sqlx::query(
            "SELECT t.id, t.name, t.created, \
             (SELECT group_concat(u.name, ',') FROM memberships m JOIN users u ON u.id = m.user_id \
              WHERE m.team_id = t.id) AS members \
             FROM teams t ORDER BY t.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                let members: Option<String> = row.try_get("members").map_err(db_error)?;
                let mut members: Vec<String> = members
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                members.sort();
                Ok(Team {
                    id: row.try_get("id").map_err(db_error)?,
                    name: row.try_get("name").map_err(db_error)?,
                    members,
                    created: row.try_get("created").map_err(db_error)?,
                })
            })
            .collect()
    }

    pub async fn team(&self, name: &str) -> Result<Team, ApiError> {
        self.list_teams()
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ApiError::not_found(format!("no such team: {name}")))
    }

    pub async fn delete_team(&self, name: &str) -> Result<(), ApiError> {
        let team = self.team(name).await?;
        sqlx::query("DELETE FROM teams WHERE id = ?")
            .bind(team.id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn add_member(&self, team: &str, user: &str) -> Result<Team, ApiError> {
        let t = self.team(team).await?;
        let u = self.user(user).await?;
        sqlx::query("INSERT OR IGNORE INTO memberships (user_id, team_id) VALUES (?, ?)")
            .bind(u.id)
            .bind(t.id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        self.team(team).await
    }

    pub async fn remove_member(&self, team: &str, user: &str) -> Result<Team, ApiError> {
        let t = self.team(team).await?;
        let u = self.user(user).await?;
        let r = sqlx::query("DELETE FROM memberships WHERE user_id = ? AND team_id = ?")
            .bind(u.id)
            .bind(t.id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(ApiError::not_found(format!("{user} is not a member of {team}")));
        }
        self.team(team).await
    }

    // --- tokens ------------------------------------------------------------------------------

    /// Creates a token for `user`; its role is capped at the user's. The secret is returned
    /// once and never stored.
    pub async fn create_token(
        &self,
        user: &str,
        name: &str,
        role: Role,
        expires_in: Option<u64>,
    ) -> Result<(Token, String), ApiError> {
        check_name(ObjectKind::Token, name)?;
        let expires = match expires_in {
            None => None,
            Some(secs) if (1..=TOKEN_MAX_LIFETIME_SECS).contains(&secs) => Some(
                (Utc::now() + Duration::seconds(secs as i64)).to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "expires_in must be between 1 and {TOKEN_MAX_LIFETIME_SECS} seconds (10 years)"
                )))
            }
        };
        let u = self.user(user).await?;
        if role > u.role {
            return Err(ApiError::bad_request(format!(
                "a token of {user} cannot have the role {}: the user is {}",
                role.as_str(),
                u.role.as_str()
            )));
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_secret());
        let created = now();
        let r = sqlx::query(
            "INSERT INTO tokens (user_id, name, token_hash, role, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(u.id)
        .bind(name)
        .bind(secret_hash(&secret))
        .bind(role.as_str())
        .bind(&created)
        .bind(&expires)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        let token = Token {
            id: r.last_insert_rowid(),
            user: u.name,
            name: name.to_string(),
            role,
            created,
            last_used: None,
            expires,
        };
        Ok((token, secret))
    }

    pub async fn list_tokens(&self) -> Result<Vec<Token>, ApiError> {
        let rows = sqlx::query(
            "SELECT k.id, u.name AS user, k.name, k.role, k.created, k.last_used, k.expires \
             FROM tokens k JOIN users u ON u.id = k.user_id ORDER BY k.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                Ok(Token {
                    id: row.try_get("id").map_err(db_error)?,
                    user: row.try_get("user").map_err(db_error)?,
                    name: row.try_get("name").map_err(db_error)?,
                    role: stored_role(&row.try_get::<String, _>("role").map_err(db_error)?)?,
                    created: row.try_get("created").map_err(db_error)?,
                    last_used: row.try_get("last_used").map_err(db_error)?,
                    expires: row.try_get("expires").map_err(db_error)?,
                })
            })
            .collect()
    }

    pub async fn delete_token(&self, id: i64) -> Result<(), ApiError> {
        let r = sqlx::query("DELETE FROM tokens WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(ApiError::not_found(format!("no such token: {id}")));
        }
        Ok(())
    }

    /// Who a bearer token is. The effective role is the lower of the token's and its user's
    /// (a user demoted after the token was made loses the power).
    pub async fn authenticate_token(&self, secret: &str) -> Result<TokenCheck, ApiError> {
        let row = sqlx::query(
            "SELECT k.id, k.role AS token_role, k.expires, k.last_used, u.id AS user_id, u.name, \
             u.role AS user_role FROM tokens k JOIN users u ON u.id = k.user_id WHERE k.token_hash = ?",
        )
        .bind(secret_hash(secret))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else { return Ok(TokenCheck::Unknown) };
        let name: String = row.try_get("name").map_err(db_error)?;
        let expires: Option<String> = row.try_get("expires").map_err(db_error)?;
        // RFC 3339 UTC with a fixed format sorts as text.
        if expires.is_some_and(|e| e <= now()) {
            return Ok(TokenCheck::Expired(name));
        }
        let token_id: i64 = row.try_get("id").map_err(db_error)?;
        let role = stored_role(&row.try_get::<String, _>("token_role").map_err(db_error)?)?
            .min(stored_role(&row.try_get::<String, _>("user_role").map_err(db_error)?)?);
        let user_id: i64 = row.try_get("user_id").map_err(db_error)?;
        // Written at most once a minute: a database write on every request serialised the API
        // under many clients. Best effort: a failed update must not refuse the request.
        let last_used: Option<String> = row.try_get("last_used").map_err(db_error)?;
        let stale = stamp(Utc::now() - LAST_SEEN_STEP);
        if last_used.is_none_or(|used| used < stale) {
            let _ = sqlx::query("UPDATE tokens SET last_used = ? WHERE id = ?")
                .bind(now())
                .bind(token_id)
                .execute(&self.pool)
                .await;
        }
        let teams = self.teams_of(user_id).await?;
        Ok(TokenCheck::Valid(Principal { user: name, role, teams, via: Via::Token }))
    }

    async fn teams_of(&self, user_id: i64) -> Result<Vec<(i64, String)>, ApiError> {
        let rows = sqlx::query(
            "SELECT t.id, t.name FROM memberships m JOIN teams t ON t.id = m.team_id WHERE m.user_id = ? ORDER BY t.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("id").map_err(db_error)?, r.try_get("name").map_err(db_error)?)))
            .collect()
    }

    // --- sessions ----------------------------------------------------------------------------

    /// Checks a password and opens a session: returns the cookie's secret and the CSRF token.
    /// Unknown users and wrong passwords get the same answer (and take the same time: a
    /// missing user is verified against a dummy hash).
    pub async fn login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<(String, String, Principal)>, ApiError> {
        let row = sqlx::query("SELECT id, password_hash FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        let (user_id, hash) = match row {
            Some(r) => (
                Some(r.try_get::<i64, _>("id").map_err(db_error)?),
                r.try_get::<Option<String>, _>("password_hash").map_err(db_error)?,
            ),
            None => (None, None),
        };
        let hash = match hash {
            Some(h) => h,
            None => dummy_hash().await?,
        };
        let ok = verify_password(password.to_string(), hash).await;
        let Some(user_id) = user_id.filter(|_| ok) else { return Ok(None) };
        let secret = random_secret();
        let csrf = random_secret();
        let expires = (Utc::now() + SESSION_LIFETIME).to_rfc3339_opts(SecondsFormat::Millis, true);
        let created = now();
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf, created, expires, last_seen) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(secret_hash(&secret))
        .bind(user_id)
        .bind(&csrf)
        .bind(&created)
        .bind(expires)
        .bind(&created)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        let principal = self
            .session(&secret)
            .await?
            .map(|(p, _)| p)
            .ok_or_else(|| ApiError::internal("session vanished"))?;
        Ok(Some((secret, csrf, principal)))
    }

    /// Who a session cookie is, and the session's CSRF token. A session past its absolute
    /// expiry, or idle for longer than [`SESSION_IDLE`], is over (and removed); a live one is
    /// marked as seen now.
    pub async fn session(&self, secret: &str) -> Result<Option<(Principal, String)>, ApiError> {
        let row = sqlx::query(
            "SELECT s.csrf, s.expires, s.created, s.last_seen, u.id, u.name, u.role \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = ?",
        )
        .bind(secret_hash(secret))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let expires: String = row.try_get("expires").map_err(db_error)?;
        let last_seen: Option<String> = row.try_get("last_seen").map_err(db_error)?;
        let last_seen = match last_seen {
            Some(t) => t,
            None => row.try_get("created").map_err(db_error)?,
        };
        let current = Utc::now();
        // RFC 3339 UTC with a fixed format sorts as text.
        if expires < stamp(current) || last_seen < stamp(current - SESSION_IDLE) {
            self.logout(secret).await?;
            return Ok(None);
        }
        if last_seen < stamp(current - LAST_SEEN_STEP) {
            sqlx::query("UPDATE sessions SET last_seen = ? WHERE id_hash = ?")
                .bind(stamp(current))
                .bind(secret_hash(secret))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        let user_id: i64 = row.try_get("id").map_err(db_error)?;
        let principal = Principal {
            user: row.try_get("name").map_err(db_error)?,
            role: stored_role(&row.try_get::<String, _>("role").map_err(db_error)?)?,
            teams: self.teams_of(user_id).await?,
            via: Via::Session,
        };
        Ok(Some((principal, row.try_get("csrf").map_err(db_error)?)))
    }

    pub async fn logout(&self, secret: &str) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(secret_hash(secret))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    // --- ownership ---------------------------------------------------------------------------

    pub async fn set_container_owner(&self, container_id: &str, team_id: i64) -> Result<(), ApiError> {
        sqlx::query("INSERT OR REPLACE INTO container_owners (container_id, team_id) VALUES (?, ?)")
            .bind(container_id)
            .bind(team_id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn container_owner(&self, container_id: &str) -> Result<Option<i64>, ApiError> {
        sqlx::query_scalar("SELECT team_id FROM container_owners WHERE container_id = ?")
            .bind(container_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)
    }

    pub async fn add_image_owner(&self, image_id: &str, team_id: i64) -> Result<(), ApiError> {
        sqlx::query("INSERT OR IGNORE INTO image_owners (image_id, team_id) VALUES (?, ?)")
            .bind(image_id)
            .bind(team_id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Forgets every team of a deleted image.
    pub async fn forget_image(&self, image_id: &str) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM image_owners WHERE image_id = ?")
            .bind(image_id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn image_owners(&self, image_id: &str) -> Result<Vec<i64>, ApiError> {
        sqlx::query_scalar("SELECT team_id FROM image_owners WHERE image_id = ?")
            .bind(image_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)
    }

    /// Records that `team_id` owns the volume `name` (made by one of its calls).
    pub async fn set_volume_owner(&self, name: &str, team_id: i64) -> Result<(), ApiError> {
        sqlx::query("INSERT OR REPLACE INTO volume_owners (volume_name, team_id) VALUES (?, ?)")
            .bind(name)
            .bind(team_id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn volume_owner(&self, name: &str) -> Result<Option<i64>, ApiError> {
        sqlx::query_scalar("SELECT team_id FROM volume_owners WHERE volume_name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)
    }

    /// Forgets the team of a removed volume (a volume made later with its name is not theirs).
    pub async fn forget_volume(&self, name: &str) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM volume_owners WHERE volume_name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Every container ID (or image ID) that some team owns.
    pub async fn owned_by_any(
        &self,
        table: OwnedKind,
    ) -> Result<std::collections::HashSet<String>, ApiError> {
        let sql = match table {
            OwnedKind::Containers => "SELECT DISTINCT container_id FROM container_owners",
            OwnedKind::Images => "SELECT DISTINCT image_id FROM image_owners",
        };
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&self.pool).await.map_err(db_error)?;
        Ok(rows.into_iter().collect())
    }

    /// Every container ID (or image ID) that one of `teams` owns.
    pub async fn owned(
        &self,
        table: OwnedKind,
        teams: &[i64],
    ) -> Result<std::collections::HashSet<String>, ApiError> {
        let (sql, _) = match table {
            OwnedKind::Containers => ("SELECT container_id FROM container_owners WHERE team_id = ?", ()),
            OwnedKind::Images => ("SELECT image_id FROM image_owners WHERE team_id = ?", ()),
        };
        let mut ids = std::collections::HashSet::new();
        for team in teams {
            let rows: Vec<String> =
                sqlx::query_scalar(sql).bind(team).fetch_all(&self.pool).await.map_err(db_error)?;
            ids.extend(rows);
        }
        Ok(ids)
    }
}

/// A repository of the node's registry server: its team (`None`: shared) and whether anyone
/// may pull it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRow {
    pub team_id: Option<i64>,
    pub public: bool,
}

impl AuthStore {
    /// Who a user name and password (or API token in the password's place, as registry clients
    /// send it) are, without opening a session. `None`: wrong name, password or token.
    pub async fn check_password(&self, name: &str, password: &str) -> Result<Option<Principal>, ApiError> {
        if password.starts_with(TOKEN_PREFIX) {
            return Ok(match self.authenticate_token(password).await? {
                TokenCheck::Valid(p) if p.user == name || name.is_empty() || name == "token" => Some(p),
                _ => None,
            });
        }
        let row = sqlx::query("SELECT id, role, password_hash FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        let (user, hash) = match row {
            Some(r) => (
                Some((
                    r.try_get::<i64, _>("id").map_err(db_error)?,
                    r.try_get::<String, _>("role").map_err(db_error)?,
                )),
                r.try_get::<Option<String>, _>("password_hash").map_err(db_error)?,
            ),
            None => (None, None),
        };
        let hash = match hash {
            Some(h) => h,
            None => dummy_hash().await?,
        };
        let ok = verify_password(password.to_string(), hash).await;
        let Some((user_id, role)) = user.filter(|_| ok) else { return Ok(None) };
        Ok(Some(Principal {
            user: name.to_string(),
            role: stored_role(&role)?,
            teams: self.teams_of(user_id).await?,
            via: Via::Session,
        }))
    }

    pub async fn repository(&self, name: &str) -> Result<Option<RepositoryRow>, ApiError> {
        let row = sqlx::query("SELECT team_id, public FROM registry_repositories WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(|r| {
            Ok(RepositoryRow {
                team_id: r.try_get("team_id").map_err(db_error)?,
                public: r.try_get::<i64, _>("public").map_err(db_error)? != 0,
            })
        })
        .transpose()
    }

    /// Records the team of a repository pushed for the first time (a known one keeps its own).
    pub async fn add_repository(&self, name: &str, team_id: Option<i64>) -> Result<(), ApiError> {
        sqlx::query("INSERT OR IGNORE INTO registry_repositories (name, team_id, public) VALUES (?, ?, 0)")
            .bind(name)
            .bind(team_id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Marks a repository public (anyone may pull it) or not; `team_id` for a repository that
    /// had no row yet.
    pub async fn set_repository_public(
        &self,
        name: &str,
        team_id: Option<i64>,
        public: bool,
    ) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO registry_repositories (name, team_id, public) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET public = excluded.public",
        )
        .bind(name)
        .bind(team_id)
        .bind(public as i64)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

/// A registry added as an object, as the database keeps it.
#[derive(Debug, Clone)]
pub struct RegistryRow {
    pub name: String,
    pub url: String,
    pub insecure: bool,
    pub team_id: Option<i64>,
    pub team: Option<String>,
    pub created: String,
}

impl AuthStore {
    pub async fn list_registries(&self) -> Result<Vec<RegistryRow>, ApiError> {
        let rows = sqlx::query(
            "SELECT r.name, r.url, r.insecure, r.team_id, t.name AS team, r.created \
             FROM registries r LEFT JOIN teams t ON t.id = r.team_id ORDER BY r.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|r| {
                Ok(RegistryRow {
                    name: r.try_get("name").map_err(db_error)?,
                    url: r.try_get("url").map_err(db_error)?,
                    insecure: r.try_get::<i64, _>("insecure").map_err(db_error)? != 0,
                    team_id: r.try_get("team_id").map_err(db_error)?,
                    team: r.try_get("team").map_err(db_error)?,
                    created: r.try_get("created").map_err(db_error)?,
                })
            })
            .collect()
    }

    pub async fn add_registry(
        &self,
        name: &str,
        url: &str,
        insecure: bool,
        team_id: Option<i64>,
    ) -> Result<(), ApiError> {
        let result = sqlx::query(
            "INSERT INTO registries (name, url, insecure, team_id, created) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(name)
        .bind(url)
        .bind(insecure as i64)
        .bind(team_id)
        .bind(now())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(ApiError::conflict(format!("registry {name} already exists")))
            }
            Err(e) => Err(db_error(e)),
        }
    }

    pub async fn remove_registry(&self, name: &str) -> Result<(), ApiError> {
        let r = sqlx::query("DELETE FROM registries WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if r.rows_affected() == 0 {
            return Err(ApiError::not_found(format!("no such registry: {name}")));
        }
        Ok(())
    }
}

/// Which ownership table.
#[derive(Debug, Clone, Copy)]
pub enum OwnedKind {
    Containers,
    Images,
}

/// An argon2id hash of a random password nobody knows: verified against when the user does
/// not exist, so that a login takes as long for a wrong name as for a wrong password.
async fn dummy_hash() -> Result<String, ApiError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY.get_or_try_init(|| hash_password(random_secret())).await.cloned()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::conflict(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::events::EventLog;

    async fn store() -> (tempfile::TempDir, AuthStore) {
        let dir = tempfile::tempdir().unwrap();
        let events = EventLog::open(&dir.path().join("berth.db")).await.unwrap();
        let store = AuthStore::new(events.pool().clone());
        store.create_user("ann", Some("a long password".into()), Role::Operator).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn sessions_end_when_idle_or_too_old() {
        let (_dir, store) = store().await;
        for (column, sql) in [
            ("last_seen", "UPDATE sessions SET last_seen = '2000-01-01T00:00:00.000Z'"),
            ("expires", "UPDATE sessions SET expires = '2000-01-01T00:00:00.000Z'"),
        ] {
            let (secret, _, _) = store.login("ann", "a long password").await.unwrap().unwrap();
            assert!(store.session(&secret).await.unwrap().is_some());
            // Idle for longer than SESSION_IDLE, or past the absolute expiry.
            sqlx::query(sql).execute(&store.pool).await.unwrap();
            assert!(store.session(&secret).await.unwrap().is_none(), "{column}");
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&store.pool).await.unwrap();
            assert_eq!(left, 0, "an ended session is removed ({column})");
        }
        // A session in use is marked as seen (at most once a minute).
        let (secret, _, _) = store.login("ann", "a long password").await.unwrap().unwrap();
        let old = (Utc::now() - Duration::minutes(30)).to_rfc3339_opts(SecondsFormat::Millis, true);
        sqlx::query("UPDATE sessions SET last_seen = ?").bind(&old).execute(&store.pool).await.unwrap();
        assert!(store.session(&secret).await.unwrap().is_some());
        let seen: String =
            sqlx::query_scalar("SELECT last_seen FROM sessions").fetch_one(&store.pool).await.unwrap();
        assert!(seen > old, "{seen} > {old}");
    }

    #[tokio::test]
    async fn a_tokens_last_use_is_written_at_most_once_a_minute() {
        let (_dir, store) = store().await;
        let (_, secret) = store.create_token("ann", "t", Role::Viewer, None).await.unwrap();
        let last_used = || async { store.list_tokens().await.unwrap()[0].last_used.clone() };
        assert_eq!(last_used().await, None);
        assert!(matches!(store.authenticate_token(&secret).await.unwrap(), TokenCheck::Valid(_)));
        let first = last_used().await.expect("marked as used");
        // Within the minute: no second write.
        let recent = stamp(Utc::now() - Duration::seconds(30));
        sqlx::query("UPDATE tokens SET last_used = ?").bind(&recent).execute(&store.pool).await.unwrap();
        store.authenticate_token(&secret).await.unwrap();
        assert_eq!(last_used().await.as_deref(), Some(recent.as_str()), "first use was {first}");
        // Older than that: written again.
        let old = stamp(Utc::now() - Duration::minutes(5));
        sqlx::query("UPDATE tokens SET last_used = ?").bind(&old).execute(&store.pool).await.unwrap();
        store.authenticate_token(&secret).await.unwrap();
        assert!(last_used().await.unwrap() > old);
    }

    #[tokio::test]
    async fn tokens_expire() {
        let (_dir, store) = store().await;
        for bad in [0, TOKEN_MAX_LIFETIME_SECS + 1] {
            let e = store.create_token("ann", "t", Role::Viewer, Some(bad)).await.unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{}", e.message);
        }
        let (token, secret) = store.create_token("ann", "t", Role::Viewer, Some(3600)).await.unwrap();
        assert!(token.expires.is_some());
        assert_eq!(store.list_tokens().await.unwrap()[0].expires, token.expires);
        assert!(matches!(store.authenticate_token(&secret).await.unwrap(), TokenCheck::Valid(_)));
        sqlx::query("UPDATE tokens SET expires = '2000-01-01T00:00:00.000Z'")
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(
            matches!(store.authenticate_token(&secret).await.unwrap(), TokenCheck::Expired(u) if u == "ann")
        );
        assert!(matches!(store.authenticate_token("berth_nope").await.unwrap(), TokenCheck::Unknown));
        let (forever, _) = store.create_token("ann", "u", Role::Viewer, None).await.unwrap();
        assert_eq!(forever.expires, None);
    }
}
