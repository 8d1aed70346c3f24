//! The `sessions` table: one row per login, tokens only as digests. A disabled user's sessions
//! are not found, whatever the tokens.
//!
//! Not here: when a session is over or how tokens rotate (`crate::auth`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::backend::{sql, Backend, Columns};
use super::handle::Store;
use super::users::{user, USER_COLUMNS};
use crate::error::ApiError;
use crate::model::{SessionRecord, User};

fn session(row: &dyn Columns) -> Result<SessionRecord, ApiError> {
    Ok(SessionRecord {
        id: row.id("s_id")?,
        user_id: row.id("s_user_id")?,
        access_hash: row.text("access_hash")?,
        refresh_hash: row.text("refresh_hash")?,
        created_at: row.time("created_at")?,
        last_seen_at: row.time("last_seen_at")?,
        access_expires_at: row.time("access_expires_at")?,
        expires_at: row.time("expires_at")?,
    })
}

impl Store {
    pub async fn insert_session(&self, s: &SessionRecord) -> Result<(), ApiError> {
        let insert = sql(
            "INSERT INTO sessions (id, user_id, access_hash, refresh_hash, created_at, \
             last_seen_at, access_expires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.id)
        .bind(s.user_id)
        .bind(s.access_hash.as_str())
        .bind(s.refresh_hash.as_str())
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.access_expires_at)
        .bind(s.expires_at);
        self.execute(insert).await?;
        Ok(())
    }

    pub async fn session_by_access(
        &self,
        hash: &str,
    ) -> Result<Option<(SessionRecord, User)>, ApiError> {
        self.session_where("s.access_hash", hash).await
    }

    pub async fn session_by_refresh(
        &self,
        hash: &str,
    ) -> Result<Option<(SessionRecord, User)>, ApiError> {
        self.session_where("s.refresh_hash", hash).await
    }

    async fn session_where(
        &self,
        column: &str,
        hash: &str,
    ) -> Result<Option<(SessionRecord, User)>, ApiError> {
        let text = format!(
            "SELECT s.id AS s_id, s.user_id AS s_user_id, s.access_hash, s.refresh_hash, \
             s.created_at, s.last_seen_at, s.access_expires_at, s.expires_at, {USER_COLUMNS} \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE {column} = $1 AND u.disabled_at IS NULL"
        );
        self.fetch_optional(sql(&text).bind(hash), |row| Ok((session(row)?, user(row)?)))
            .await
    }

    pub async fn touch_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), ApiError> {
        let s = sql("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
            .bind(id)
            .bind(at);
        self.execute(s).await?;
        Ok(())
    }

    /// Replace the tokens of `next.id` if its refresh token is still `old_refresh_hash`.
    pub async fn rotate_session(
        &self,
        old_refresh_hash: &str,
        next: &SessionRecord,
    ) -> Result<bool, ApiError> {
        let s = sql(
            "UPDATE sessions SET access_hash = $2, refresh_hash = $3, last_seen_at = $4, \
             access_expires_at = $5 WHERE id = $1 AND refresh_hash = $6",
        )
        .bind(next.id)
        .bind(next.access_hash.as_str())
        .bind(next.refresh_hash.as_str())
        .bind(next.last_seen_at)
        .bind(next.access_expires_at)
        .bind(old_refresh_hash);
        Ok(self.execute(s).await? == 1)
    }

    pub async fn delete_session(&self, id: Uuid) -> Result<(), ApiError> {
        self.execute(sql("DELETE FROM sessions WHERE id = $1").bind(id))
            .await?;
        Ok(())
    }

    /// End every session of `user` (disabled); how many.
    pub async fn delete_user_sessions(&self, user: Uuid) -> Result<u64, ApiError> {
        Ok(self
            .execute(sql("DELETE FROM sessions WHERE user_id = $1").bind(user))
            .await?)
    }

    /// Delete sessions past their absolute end or idle since `idle_cutoff`; how many.
    pub async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<u64, ApiError> {
        let s = sql("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(idle_cutoff);
        Ok(self.execute(s).await?)
    }
}
