//! Users: the rules for usernames, display names and passwords, creating users (with a generated
//! first password, shown once), listing and searching them for those allowed to see them,
//! changing their name and role, resetting their password, and disabling and enabling them.
//!
//! The last administrator stays: nobody can demote or disable their own account, and a demotion
//! happens only while another enabled administrator remains (checked in the same statement as
//! the change). A role change or a password reset takes effect at once: roles are read on
//! every request, a reset ends every session of the user, and a role change makes the media
//! nodes refuse the join tokens issued under the old role (they join again with the new one).
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
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::{kinds, AuditSink};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::model::{Actor, NewAuditEntry, User, UserFilter, UserRole};
use crate::node_hub::NodeHub;
use crate::password::{self, Hasher};
use crate::secret;
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
    /// At least 10 characters (at most 256 bytes).
    #[schema(min_length = 10)]
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

/// What `GET /api/users` may ask for.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users with this role.
    pub role: Option<UserRole>,
    /// Only users whose display name or username contains this (case-insensitive).
    pub q: Option<String>,
    /// Admins: only disabled (`true`) or only enabled (`false`) users.
    pub disabled: Option<bool>,
    /// Page size, 1-1000 (default 1000).
    pub limit: Option<u32>,
    /// Users to skip, for the next page (default 0). The total is in `X-Total-Count`.
    pub offset: Option<u64>,
}

/// Admins see everyone with usernames; doctors see enabled doctors and students (to invite
/// them), without usernames; students may not list users. One page, by display name, and how
/// many match in all.
pub(crate) async fn list(
    store: &Store,
    actor: &Actor,
    q: UserQuery,
) -> Result<(Vec<UserListItem>, i64), ApiError> {
    let admin = match actor.user.role {
        UserRole::Admin => true,
        UserRole::Doctor if q.role != Some(UserRole::Admin) => false,
        UserRole::Doctor => {
            return Err(ApiError::Forbidden(
                "doctors may list doctors and students only",
            ))
        }
        UserRole::Student => return Err(ApiError::Forbidden("students may not list users")),
    };
    let limit = q.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit must be 1-1000"));
    }
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > 100) {
        return Err(ApiError::validation("q must be at most 100 characters"));
    }
    if !admin && q.disabled.is_some() {
        return Err(ApiError::Forbidden("only admins may filter by disabled"));
    }
    let filter = UserFilter {
        role: q.role,
        text: text.map(str::to_lowercase),
        // Doctors choosing invitees never see disabled users, nor admins.
        disabled: if admin { q.disabled } else { Some(false) },
        exclude_admins: !admin,
        limit,
        offset: q.offset.unwrap_or(0),
    };
    let (users, total) = store.list_users(&filter).await?;
    Ok((
        users
            .into_iter()
            .map(|(u, disabled)| item(u, disabled, admin))
            .collect(),
        total,
    ))
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
    let (store, audit, now) = (cx.store, cx.audit, cx.now);
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
        deny_subject(&cx, id, RevokeReason::UserDisabled).await?;
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

/// An admin's request to create a user. Without a password the server makes one up and shows
/// it once, in the answer: the way the console does it, so nobody has to invent one.
#[derive(Clone, Deserialize, ToSchema)]
pub struct CreateUser {
    /// 3-64 characters of `a-z 0-9 . _ @ -`, case-insensitive (stored lower-case).
    pub username: String,
    /// 1-100 characters.
    pub display_name: String,
    /// At least 10 characters (at most 256 bytes); absent: a generated one, returned once as
    /// `password`.
    #[serde(default)]
    #[schema(min_length = 10)]
    pub password: Option<String>,
    pub role: UserRole,
}

/// A created user, and the generated first password if the server made one (shown only here).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UserCreated {
    #[serde(flatten)]
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A new password an admin set for a user, shown only here.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PasswordReset {
    pub password: String,
    /// Sessions of the user that ended.
    pub sessions_ended: u64,
}

/// What an admin may change of a user; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// 1-100 characters.
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub role: Option<UserRole>,
}

/// Characters of generated passwords: lower-case letters and digits, without the look-alikes
/// `0 o 1 i l`, so a password read off a screen or over the phone is typed right.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A fresh password: four groups of five from [`PASSWORD_ALPHABET`] (about 99 bits), e.g.
/// `k7fq2-mx9rt-a3hwe-p4zcn`.
pub(crate) fn generate_password() -> Result<String, ApiError> {
    let n = PASSWORD_ALPHABET.len();
    // Bytes at or above the largest multiple of n would favour the first characters.
    let fair = 256 - 256 % n;
    let mut out = String::with_capacity(23);
    let mut taken = 0;
    while taken < 20 {
        for b in secret::random_bytes::<32>()? {
            if usize::from(b) >= fair || taken == 20 {
                continue;
            }
            if taken > 0 && taken % 5 == 0 {
                out.push('-');
            }
            out.push(char::from(PASSWORD_ALPHABET[usize::from(b) % n]));
            taken += 1;
        }
    }
    Ok(out)
}

/// An admin creates a user; without a password in the request one is generated and returned.
pub(crate) async fn create_by_admin(
    store: &Store,
    hasher: &Hasher,
    now: DateTime<Utc>,
    actor: &Actor,
    req: CreateUser,
) -> Result<UserCreated, ApiError> {
    let generated = match &req.password {
        Some(_) => None,
        None => Some(generate_password()?),
    };
    let new = NewUser {
        username: req.username,
        display_name: req.display_name,
        password: req
            .password
            .or_else(|| generated.clone())
            .unwrap_or_default(),
        role: req.role,
    };
    let user = create(store, hasher, now, Some(actor.user.id), new).await?;
    Ok(UserCreated {
        user,
        password: generated,
    })
}

/// An admin changes a user's display name or role. Refused: changing one's own role
/// (`cannot_demote_self`), and demoting the last enabled admin (`last_admin`). A role change
/// refuses, at the media nodes, the join tokens issued under the old role.
pub(crate) async fn update(
    cx: Authority<'_>,
    actor: &Actor,
    id: Uuid,
    change: UserUpdate,
) -> Result<UserListItem, ApiError> {
    let display_name = change
        .display_name
        .as_deref()
        .map(validate_display_name)
        .transpose()?;
    let Some((before, disabled)) = cx.store.user_record(id).await? else {
        return Err(ApiError::NotFound("user"));
    };
    let role = change.role.filter(|r| *r != before.role);
    if role.is_some() && id == actor.user.id {
        return Err(ApiError::conflict(
            "cannot_demote_self",
            "administrators cannot change their own role",
        ));
    }
    if display_name.is_none() && role.is_none() {
        return Ok(item(before, disabled, true));
    }
    if !cx
        .store
        .update_user(id, display_name.as_deref(), role)
        .await?
    {
        if cx.store.user_record(id).await?.is_none() {
            return Err(ApiError::NotFound("user"));
        }
        return Err(ApiError::conflict(
            "last_admin",
            "this is the last enabled administrator; make another one first",
        ));
    }
    if role.is_some() {
        // Roles are read on every request, but a join token carries the role it was issued
        // with until its booking ends: cut those, so the user joins again as what they are now.
        deny_subject(&cx, id, RevokeReason::SessionEnded).await?;
    }
    cx.audit
        .record(
            kinds::USER_UPDATED,
            Some(actor.user.id),
            None,
            serde_json::json!({
                "user": id,
                "display_name_changed": display_name.is_some(),
                "role_from": role.map(|_| before.role),
                "role_to": role,
            }),
        )
        .await?;
    tracing::info!(user = %id, role_changed = role.is_some(), "user updated");
    let Some((after, disabled)) = cx.store.user_record(id).await? else {
        return Err(ApiError::NotFound("user"));
    };
    Ok(item(after, disabled, true))
}

/// An admin gives a user a new, generated password (shown once) and ends all their sessions:
/// whoever held the old password or a token is out.
pub(crate) async fn reset_password(
    store: &Store,
    audit: &AuditSink,
    hasher: &Hasher,
    actor: &Actor,
    id: Uuid,
) -> Result<PasswordReset, ApiError> {
    if store.user_by_id(id).await?.is_none() {
        return Err(ApiError::NotFound("user"));
    }
    let password = generate_password()?;
    let hash = hasher.hash(password.clone()).await?;
    if !store.set_user_password(id, &hash).await? {
        return Err(ApiError::NotFound("user"));
    }
    let sessions_ended = store.delete_user_sessions(id).await?;
    audit
        .record(
            kinds::USER_PASSWORD_RESET,
            Some(actor.user.id),
            None,
            serde_json::json!({ "user": id, "sessions_ended": sessions_ended }),
        )
        .await?;
    tracing::info!(user = %id, sessions = sessions_ended, "password reset by an admin");
    Ok(PasswordReset {
        password,
        sessions_ended,
    })
}

/// Tell the media nodes to refuse every token of user `id` issued until now.
async fn deny_subject(cx: &Authority<'_>, id: Uuid, reason: RevokeReason) -> Result<(), ApiError> {
    // A join token lives until its booking's end: at most the grace before a slot plus the
    // longest slot after it was issued.
    let longest = chrono::Duration::from_std(cx.config.join_grace + cx.config.max_booking)
        .map_err(|_| ApiError::Config("join_grace + max_booking is too large".into()))?;
    cx.hub
        .deny(
            DenyTarget::Subject {
                sub: id.to_string(),
            },
            DenyScope::Access,
            Some(cx.now),
            cx.now + longest,
            reason,
        )
        .await
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
    fn generated_passwords() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 23, "{a}");
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.len(), 4, "{a}");
        assert!(groups
            .iter()
            .all(|g| g.len() == 5 && g.bytes().all(|c| PASSWORD_ALPHABET.contains(&c))));
        assert!(password::validate(&a).is_ok());
    }

    #[test]
    fn display_names() {
        assert_eq!(validate_display_name("  Dr Who ").unwrap(), "Dr Who");
        assert!(validate_display_name("   ").is_err());
        assert!(validate_display_name("a\u{7}b").is_err());
    }
}
