//! The `users` table: accounts and their password hashes.
//!
//! Not here: username and password rules (`crate::users`), sessions (`sessions`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::backend::{sql, unique_violation_as, Backend, Columns};
use super::handle::Store;
use crate::error::ApiError;
use crate::model::{User, UserRole};

/// The columns [`user`] reads, aliased so that they do not clash with a joined table's.
pub(super) const USER_COLUMNS: &str =
    "u.id AS u_id, u.username AS u_username, u.display_name AS u_display_name, u.role AS u_role";

pub(super) fn user(row: &dyn Columns) -> Result<User, ApiError> {
    Ok(User {
        id: row.id("u_id")?,
        username: row.text("u_username")?,
        display_name: row.text("u_display_name")?,
        role: UserRole::from_db(&row.text("u_role")?)?,
    })
}

impl Store {
    /// A taken username is `Conflict { code: "username_taken" }`.
    pub async fn insert_user(
        &self,
        u: &User,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let s = sql(
            "INSERT INTO users (id, username, display_name, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(u.id)
        .bind(u.username.as_str())
        .bind(u.display_name.as_str())
        .bind(u.role.as_str())
        .bind(password_hash)
        .bind(at);
        self.execute(s).await.map_err(|e| {
            unique_violation_as(
                e,
                ApiError::conflict("username_taken", "that username is taken"),
            )
        })?;
        Ok(())
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, ApiError> {
        let text = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        self.fetch_optional(sql(&text).bind(id), user).await
    }

    /// The user, their password hash, and whether they are disabled.
    pub async fn login_record(
        &self,
        username: &str,
    ) -> Result<Option<(User, String, bool)>, ApiError> {
        let text = format!(
            "SELECT {USER_COLUMNS}, u.password_hash, u.disabled_at \
             FROM users u WHERE u.username = $1"
        );
        self.fetch_optional(sql(&text).bind(username), |row| {
            Ok((
                user(row)?,
                row.text("password_hash")?,
                row.opt_time("disabled_at")?.is_some(),
            ))
        })
        .await
    }

    /// Users (with whether each is disabled), by display name.
    pub async fn list_users(&self, role: Option<UserRole>) -> Result<Vec<(User, bool)>, ApiError> {
        let text = format!(
            "SELECT {USER_COLUMNS}, u.disabled_at FROM users u WHERE ($1 IS NULL OR u.role = $1) \
             ORDER BY u.display_name, u.id"
        );
        self.fetch_all(sql(&text).bind(role.map(UserRole::as_str)), |row| {
            Ok((user(row)?, row.opt_time("disabled_at")?.is_some()))
        })
        .await
    }

    /// Disable (`Some(since)`) or enable (`None`) a user. False if there is no such user.
    pub async fn set_user_disabled(
        &self,
        id: Uuid,
        since: Option<DateTime<Utc>>,
    ) -> Result<bool, ApiError> {
        let s = sql("UPDATE users SET disabled_at = $2 WHERE id = $1")
            .bind(id)
            .bind(since);
        Ok(self.execute(s).await? == 1)
    }

    /// Users among `ids` that are not disabled.
    pub async fn enabled_users(&self, ids: &[Uuid]) -> Result<Vec<User>, ApiError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let text = format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 AND u.disabled_at IS NULL"
            );
            out.extend(self.fetch_optional(sql(&text).bind(*id), user).await?);
        }
        Ok(out)
    }

    pub async fn count_admins(&self) -> Result<i64, ApiError> {
        let s = sql("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'");
        let n = self.fetch_optional(s, |row| row.int("n")).await?;
        Ok(n.unwrap_or(0))
    }
}
