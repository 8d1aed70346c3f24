//! Users: the rules for usernames, display names and passwords, creating users, listing them
//! for those allowed to see them, and disabling and enabling them.
//!
//! Disabling a user takes everything away at once: they cannot log in, their sessions end (their
//! next API call answers 401), and the media nodes refuse their join tokens and end their live
//! sessions (a deny entry on their subject, cut at this second, so tokens issued after they are
//! enabled again pass).
//!
//! Not here: the `User` type and its roles (`model`), sessions and login (`auth`), HTTP
//! (`http::users`), SQL (`store`).

use bedside_proto::node::{DenyScope, DenyTarget, RevokeReason};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{kinds, AuditSink};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::model::{Actor, NewAuditEntry, User, UserRole};
use crate::node_hub::NodeHub;
use crate::password::{self, Hasher};
use crate::store::Store;

/// A user in a listing. Doctors (choosing whom to invite) get no usernames.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UserListItem {
    pub id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub display_name: String,
    pub role: UserRole,
    /// Admins only: the user is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

#[derive(Clone, Deserialize, ToSchema)]
pub struct NewUser {
    /// 3-64 characters of `a-z 0-9 . _ @ -`, case-insensitive (stored lower-case).
    pub username: String,
    /// 1-100 characters.
    pub display_name: String,
    /// At least 10 characters.
    pub password: String,
    pub role: UserRole,
}

pub(crate) fn normalize_username(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim().to_lowercase();
    let n = name.chars().count();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
    if !(3..=64).contains(&n)
        || !name.chars().all(allowed)
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(ApiError::validation(
            "username must be 3-64 characters of a-z, 0-9, '.', '_', '@', '-', starting with a letter or digit",
        ));
    }
    Ok(name)
}

pub(crate) fn validate_display_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let n = name.chars().count();
    if !(1..=100).contains(&n) || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "display_name must be 1-100 characters without control characters",
        ));
    }
    Ok(name.to_string())
}

/// Validate, hash, insert and audit a new user. `actor` is the admin creating it, if any. Writes
/// its audit entry through the store, not an `AuditSink`, because `bedside admin create` runs
/// this without a server.
pub(crate) async fn create(
    store: &Store,
    hasher: &Hasher,
    now: DateTime<Utc>,
    actor: Option<Uuid>,
    new: NewUser,
) -> Result<User, ApiError> {
    let username = normalize_username(&new.username)?;
    let display_name = validate_display_name(&new.display_name)?;
    password::validate(&new.password)?;
    let hash = hasher.hash(new.password).await?;
    let user = User {
        id: Uuid::new_v4(),
        username,
        display_name,
        role: new.role,
    };
    store.insert_user(&user, &hash, now).await?;
    store
        .append_audit(&NewAuditEntry::new(
            now,
            kinds::USER_CREATED,
            actor.map(|a| a.to_string()),
            None,
            serde_json::json!({ "user": user.id, "role": user.role }),
        ))
        .await?;
    tracing::info!(user = %user.id, role = user.role.as_str(), "user created");
    Ok(user)
}

/// Admins see everyone with usernames; doctors see doctors and students (to invite them),
/// without usernames; students may not list users.
pub(crate) async fn list(
    store: &Store,
    actor: &Actor,
    role: Option<UserRole>,
) -> Result<Vec<UserListItem>, ApiError> {
    let admin = match actor.user.role {
        UserRole::Admin => true,
        UserRole::Doctor if role != Some(UserRole::Admin) => false,
        UserRole::Doctor => {
            return Err(ApiError::Forbidden(
                "doctors may list doctors and students only",
            ))
        }
        UserRole::Student => return Err(ApiError::Forbidden("students may not list users")),
    };
    let users = store.list_users(role).await?;
    Ok(users
        .into_iter()
        .filter(|(u, disabled)| admin || (u.role != UserRole::Admin && !disabled))
        .map(|(u, disabled)| item(u, disabled, admin))
        .collect())
}

fn item(u: User, disabled: bool, admin: bool) -> UserListItem {
    UserListItem {
        id: u.id,
        username: admin.then_some(u.username),
        display_name: u.display_name,
        role: u.role,
        disabled: admin.then_some(disabled),
    }
}

/// What disabling or enabling a user needs besides the user.
pub(crate) struct Authority<'a> {
    pub store: &'a Store,
    pub audit: &'a AuditSink,
    pub hub: &'a NodeHub,
    pub config: &'a ApiConfig,
    pub now: DateTime<Utc>,
}

/// An admin disables (`disabled`) or enables user `id`. Admins cannot disable themselves.
/// Repeating either is harmless (disabling again cuts the deny at the new second).
pub(crate) async fn set_disabled(
    cx: Authority<'_>,
    actor: &Actor,
    id: Uuid,
    disabled: bool,
) -> Result<UserListItem, ApiError> {
    let Authority {
        store,
        audit,
        hub,
        config,
        now,
    } = cx;
    if disabled && id == actor.user.id {
        return Err(ApiError::conflict(
            "cannot_disable_self",
            "administrators cannot disable their own account",
        ));
    }
    let Some(user) = store.user_by_id(id).await? else {
        return Err(ApiError::NotFound("user"));
    };
    store.set_user_disabled(id, disabled.then_some(now)).await?;
    if disabled {
        let ended = store.delete_user_sessions(id).await?;
        // A join token lives until its booking's end: at most the grace before a slot plus the
        // longest slot after it was issued.
        let longest = chrono::Duration::from_std(config.join_grace + config.max_booking)
            .map_err(|_| ApiError::Config("join_grace + max_booking is too large".into()))?;
        hub.deny(
            DenyTarget::Subject {
                sub: id.to_string(),
            },
            DenyScope::Access,
            Some(now),
            now + longest,
            RevokeReason::UserDisabled,
        )
        .await?;
        tracing::info!(user = %id, sessions = ended, "user disabled");
    } else {
        tracing::info!(user = %id, "user enabled");
    }
    let kind = if disabled {
        kinds::USER_DISABLED
    } else {
        kinds::USER_ENABLED
    };
    audit
        .record(
            kind,
            Some(actor.user.id),
            None,
            serde_json::json!({ "user": id }),
        )
        .await?;
    Ok(item(user, disabled, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(normalize_username("  Dr.House ").unwrap(), "dr.house");
        assert!(normalize_username("ab").is_err());
        assert!(normalize_username("-abc").is_err());
        assert!(normalize_username("a b c").is_err());
        assert!(normalize_username(&"a".repeat(65)).is_err());
        assert!(normalize_username("jane@ward-3").is_ok());
    }

    #[test]
    fn display_names() {
        assert_eq!(validate_display_name("  Dr Who ").unwrap(), "Dr Who");
        assert!(validate_display_name("   ").is_err());
        assert!(validate_display_name("a\u{7}b").is_err());
    }
}
