//! Sessions: login, refresh, logout, and turning an access token into an [`Actor`].
//!
//! Access and refresh tokens are opaque random strings; only their digests are stored. Every
//! request looks its access token up, so logout and the idle timeout take effect at once.
//! Refresh rotates both tokens. A disabled user cannot log in, and their sessions are not found.
//! Not here: password hashing (`password`), the back-off (`ratelimit`), join tokens for rooms
//! (`join`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{kinds, AuditSink};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::model::{Actor, SessionRecord, User};
use crate::password::Hasher;
use crate::ratelimit;
use crate::secret::{self, ACCESS_PREFIX, REFRESH_PREFIX};
use crate::store::Store;

/// Answer to login and refresh.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Exchange at `POST /api/auth/refresh` for a new pair; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub user: User,
}

/// What a login form sent, and from where.
pub(crate) struct Credentials<'a> {
    pub username: &'a str,
    pub password: String,
    /// The client's address, for the per-address limit and the audit log.
    pub client: Option<&'a str>,
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// What a login needs besides the request.
pub(crate) struct LoginContext<'a> {
    pub store: &'a Store,
    pub audit: &'a AuditSink,
    pub hasher: &'a Hasher,
    pub config: &'a ApiConfig,
    pub now: DateTime<Utc>,
}

pub(crate) async fn login(
    cx: LoginContext<'_>,
    credentials: Credentials<'_>,
) -> Result<TokenResponse, ApiError> {
    let LoginContext {
        store,
        audit,
        hasher,
        config,
        now,
    } = cx;
    let Credentials {
        username,
        password,
        client,
    } = credentials;
    let account = username.trim().to_lowercase();
    ratelimit::purge(store, &config.login_limits, now).await?;
    let counted = ratelimit::admit(store, &config.login_limits, &account, client, now).await?;

    let record = store.login_record(&account).await?;
    let (user, hash, disabled) = match record {
        Some((user, hash, disabled)) => (Some(user), Some(hash), disabled),
        None => (None, None, false),
    };
    let right = hasher.verify(password, hash).await?;
    if !right || disabled {
        let reason = match (&user, right) {
            (None, _) => "unknown_user",
            (Some(_), false) => "wrong_password",
            (Some(_), true) => "disabled",
        };
        audit
            .record(
                kinds::LOGIN_FAILED,
                user.as_ref().map(|u| u.id),
                None,
                serde_json::json!({ "reason": reason, "client": client }),
            )
            .await?;
        // Said only to whoever knows the password.
        if right {
            return Err(ApiError::Unauthenticated("this account is disabled"));
        }
        return Err(ApiError::InvalidCredentials);
    }
    let user = user.ok_or_else(|| ApiError::internal("verified a password without a user"))?;
    ratelimit::succeeded(store, &counted).await?;

    let idle_cutoff = now - chrono_of(config.idle_timeout);
    store.purge_sessions(now, idle_cutoff).await?;
    let (record, tokens) = new_session(config, user.id, now, None)?;
    store.insert_session(&record).await?;
    audit
        .record(
            kinds::LOGIN_OK,
            Some(user.id),
            None,
            serde_json::json!({ "session": record.id, "client": client }),
        )
        .await?;
    tracing::info!(user = %user.id, session = %record.id, "login");
    Ok(token_response(tokens, &record, user, now))
}

pub(crate) async fn refresh(
    store: &Store,
    config: &ApiConfig,
    now: DateTime<Utc>,
    refresh_token: &str,
) -> Result<TokenResponse, ApiError> {
    let old_hash = secret::digest(refresh_token);
    let Some((session, user)) = store.session_by_refresh(&old_hash).await? else {
        return Err(ApiError::Unauthenticated("invalid refresh token"));
    };
    if session_is_over(config, &session, now) {
        store.delete_session(session.id).await?;
        return Err(ApiError::Unauthenticated("session expired; log in again"));
    }
    let (record, tokens) = new_session(config, user.id, now, Some(&session))?;
    if !store.rotate_session(&old_hash, &record).await? {
        return Err(ApiError::Unauthenticated("refresh token was already used"));
    }
    Ok(token_response(tokens, &record, user, now))
}

pub(crate) async fn logout(
    store: &Store,
    audit: &AuditSink,
    actor: &Actor,
) -> Result<(), ApiError> {
    store.delete_session(actor.session_id).await?;
    audit
        .record(
            kinds::LOGOUT,
            Some(actor.user.id),
            None,
            serde_json::json!({ "session": actor.session_id }),
        )
        .await?;
    Ok(())
}

pub(crate) async fn authenticate(
    store: &Store,
    config: &ApiConfig,
    now: DateTime<Utc>,
    access_token: &str,
) -> Result<Actor, ApiError> {
    let Some((session, user)) = store
        .session_by_access(&secret::digest(access_token))
        .await?
    else {
        return Err(ApiError::Unauthenticated("invalid access token"));
    };
    if session_is_over(config, &session, now) {
        store.delete_session(session.id).await?;
        return Err(ApiError::Unauthenticated("session expired; log in again"));
    }
    if session.access_expires_at <= now {
        return Err(ApiError::Unauthenticated(
            "access token expired; use the refresh token",
        ));
    }
    // Recording activity costs a write; once per small fraction of the idle timeout is
    // precise enough and keeps bursts of requests from queueing on SQLite's write lock.
    let touch_every = chrono_of(config.idle_timeout / 10).min(chrono::Duration::seconds(60));
    if now - session.last_seen_at >= touch_every {
        store.touch_session(session.id, now).await?;
    }
    Ok(Actor {
        user,
        session_id: session.id,
    })
}

fn session_is_over(config: &ApiConfig, s: &SessionRecord, now: DateTime<Utc>) -> bool {
    s.expires_at <= now || s.last_seen_at + chrono_of(config.idle_timeout) <= now
}

/// A new session row (or the next generation of `previous`) and its plain tokens.
fn new_session(
    config: &ApiConfig,
    user_id: Uuid,
    now: DateTime<Utc>,
    previous: Option<&SessionRecord>,
) -> Result<(SessionRecord, (String, String)), ApiError> {
    let access = secret::generate(ACCESS_PREFIX)?;
    let refresh = secret::generate(REFRESH_PREFIX)?;
    let (id, created_at, expires_at) = match previous {
        Some(p) => (p.id, p.created_at, p.expires_at),
        None => (Uuid::new_v4(), now, now + chrono_of(config.session_max_age)),
    };
    let record = SessionRecord {
        id,
        user_id,
        access_hash: secret::digest(&access),
        refresh_hash: secret::digest(&refresh),
        created_at,
        last_seen_at: now,
        access_expires_at: (now + chrono_of(config.access_token_ttl)).min(expires_at),
        expires_at,
    };
    Ok((record, (access, refresh)))
}

fn token_response(
    (access_token, refresh_token): (String, String),
    record: &SessionRecord,
    user: User,
    now: DateTime<Utc>,
) -> TokenResponse {
    TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: (record.access_expires_at - now).num_seconds().max(0) as u64,
        user,
    }
}
