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

    /// The user and their password hash.
    pub async fn login_record(&self, username: &str) -> Result<Option<(User, String)>, ApiError> {
        let text =
            format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = $1");
        self.fetch_optional(sql(&text).bind(username), |row| {
            Ok((user(row)?, row.text("password_hash")?))
        })
        .await
    }

    pub async fn list_users(&self, role: Option<UserRole>) -> Result<Vec<User>, ApiError> {
        let text = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE ($1 IS NULL OR u.role = $1) \
             ORDER BY u.display_name, u.id"
        );
        self.fetch_all(sql(&text).bind(role.map(UserRole::as_str)), user)
            .await
    }

    pub async fn count_admins(&self) -> Result<i64, ApiError> {
        let s = sql("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'");
        let n = self.fetch_optional(s, |row| row.int("n")).await?;
        Ok(n.unwrap_or(0))
    }
}
