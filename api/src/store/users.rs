//! The `users` table: accounts and their password hashes; listing, searching and changing them.
//!
//! Not here: username and password rules (`crate::users`), sessions (`sessions`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::backend::{
    contains_pattern, placeholders, sql, unique_violation_as, Backend, Columns, Statement,
};
use super::handle::Store;
use crate::error::ApiError;
use crate::model::{User, UserFilter, UserRole};

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

    /// One page of the users `f` asks for (with whether each is disabled), by display name,
    /// and how many there are in all.
    pub async fn list_users(&self, f: &UserFilter) -> Result<(Vec<(User, bool)>, i64), ApiError> {
        const WHERE: &str = "WHERE ($1 IS NULL OR u.role = $1) \
             AND ($2 IS NULL OR LOWER(u.display_name) LIKE $2 ESCAPE '\\' \
                  OR u.username LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR (CASE WHEN u.disabled_at IS NULL THEN 0 ELSE 1 END) = $3) \
             AND ($4 = 0 OR u.role <> 'admin')";
        fn filter<'s>(s: Statement<'s>, f: &UserFilter) -> Statement<'s> {
            s.bind(f.role.map(UserRole::as_str))
                .bind(f.text.as_deref().map(contains_pattern).as_deref())
                .bind(f.disabled.map(i64::from))
                .bind(i64::from(f.exclude_admins))
        }
        let text = format!(
            "SELECT {USER_COLUMNS}, u.disabled_at FROM users u {WHERE} \
             ORDER BY u.display_name, u.id LIMIT $5 OFFSET $6"
        );
        let page = filter(sql(&text), f)
            .bind(i64::from(f.limit))
            .bind(i64::try_from(f.offset).unwrap_or(i64::MAX));
        let users = self
            .fetch_all(page, |row| {
                Ok((user(row)?, row.opt_time("disabled_at")?.is_some()))
            })
            .await?;
        let text = format!("SELECT COUNT(*) AS n FROM users u {WHERE}");
        let total = self
            .fetch_optional(filter(sql(&text), f), |row| row.int("n"))
            .await?;
        Ok((users, total.unwrap_or(0)))
    }

    /// The user and whether they are disabled.
    pub async fn user_record(&self, id: Uuid) -> Result<Option<(User, bool)>, ApiError> {
        let text = format!("SELECT {USER_COLUMNS}, u.disabled_at FROM users u WHERE u.id = $1");
        self.fetch_optional(sql(&text).bind(id), |row| {
            Ok((user(row)?, row.opt_time("disabled_at")?.is_some()))
        })
        .await
    }

    /// Display names and roles of those of `ids` that are users.
    pub async fn user_names(&self, ids: &[Uuid]) -> Result<Vec<User>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let text = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id IN ({})",
            placeholders(ids.len())
        );
        let s = ids.iter().fold(sql(&text), |s, id| s.bind(*id));
        self.fetch_all(s, user).await
    }

    /// Change what is given of a user. A change of role away from `admin` happens only if
    /// another enabled admin remains, checked in the same statement. False if there is no such
    /// user or that check failed.
    pub async fn update_user(
        &self,
        id: Uuid,
        display_name: Option<&str>,
        role: Option<UserRole>,
    ) -> Result<bool, ApiError> {
        let s = sql(
            "UPDATE users SET display_name = COALESCE($2, display_name), \
             role = COALESCE($3, role) \
             WHERE id = $1 AND ($3 IS NULL OR $3 = 'admin' OR role <> 'admin' OR EXISTS ( \
                 SELECT 1 FROM users o WHERE o.role = 'admin' AND o.disabled_at IS NULL \
                 AND o.id <> $1))",
        )
        .bind(id)
        .bind(display_name)
        .bind(role.map(UserRole::as_str));
        Ok(self.execute(s).await? == 1)
    }

    /// Replace a user's password hash. False if there is no such user.
    pub async fn set_user_password(&self, id: Uuid, password_hash: &str) -> Result<bool, ApiError> {
        let s = sql("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(password_hash);
        Ok(self.execute(s).await? == 1)
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
