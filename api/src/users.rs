//! Users: the rules for usernames, display names and passwords, creating users and listing them
//! for those allowed to see them.
//!
//! Not here: the `User` type and its roles (`model`), sessions and login (`auth`), HTTP
//! (`http::users`), SQL (`store`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::kinds;
use crate::error::ApiError;
use crate::model::{Actor, NewAuditEntry, User, UserRole};
use crate::password;
use crate::store::Store;

/// A user in a listing. Doctors (choosing whom to invite) get no usernames.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UserListItem {
    pub id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub display_name: String,
    pub role: UserRole,
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
    now: DateTime<Utc>,
    actor: Option<Uuid>,
    new: NewUser,
) -> Result<User, ApiError> {
    let username = normalize_username(&new.username)?;
    let display_name = validate_display_name(&new.display_name)?;
    password::validate(&new.password)?;
    let hash = password::hash(new.password).await?;
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
        .filter(|u| admin || u.role != UserRole::Admin)
        .map(|u| UserListItem {
            id: u.id,
            username: admin.then_some(u.username),
            display_name: u.display_name,
            role: u.role,
        })
        .collect())
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
