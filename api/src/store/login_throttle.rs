//! The `login_throttle` table: failed-login counts and how long each key must wait, shared by
//! every API replica. Each change is one atomic statement (an upsert that counts, a "later of
//! the two" for the wait), so concurrent logins from one address (a hospital's NAT) never lose
//! a count or wait on each other.
//!
//! Not here: the back-off arithmetic or which keys a login counts against (`crate::ratelimit`).

use chrono::{DateTime, Utc};

use super::backend::{sql, Backend, Columns};
use super::handle::Store;
use crate::error::ApiError;
use crate::model::Throttle;

fn throttle(row: &dyn Columns) -> Result<Throttle, ApiError> {
    Ok(Throttle {
        failures: row.int("failures")?,
        last_failure_at: row.time("last_failure_at")?,
        blocked_until: row.time("blocked_until")?,
    })
}

impl Store {
    pub async fn throttle(&self, key: &str) -> Result<Option<Throttle>, ApiError> {
        let s = sql(
            "SELECT failures, last_failure_at, blocked_until FROM login_throttle \
             WHERE key = $1",
        )
        .bind(key);
        self.fetch_optional(s, throttle).await
    }

    /// Count one failure on `key` at `now`, starting over if both its last failure and its
    /// last wait ended before `forget_before`; the row after counting (its wait not yet
    /// extended; a new row waits for nothing).
    pub async fn count_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<Throttle, ApiError> {
        let s = sql(
            "INSERT INTO login_throttle (key, failures, last_failure_at, blocked_until) \
             VALUES ($1, 1, $2, $4) ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN login_throttle.blocked_until < $3 \
                             AND login_throttle.last_failure_at < $3 THEN 1 \
                        ELSE login_throttle.failures + 1 END, \
             last_failure_at = $2 \
             RETURNING failures, last_failure_at, blocked_until",
        )
        .bind(key)
        .bind(now)
        .bind(forget_before)
        .bind(DateTime::<Utc>::UNIX_EPOCH);
        self.fetch_optional(s, throttle)
            .await?
            .ok_or_else(|| ApiError::internal("upsert returned no row"))
    }

    /// `key` waits until `until`, or longer if it already does.
    pub async fn extend_wait(&self, key: &str, until: DateTime<Utc>) -> Result<(), ApiError> {
        let s = sql("UPDATE login_throttle SET blocked_until = \
             CASE WHEN blocked_until > $2 THEN blocked_until ELSE $2 END WHERE key = $1")
        .bind(key)
        .bind(until);
        self.execute(s).await?;
        Ok(())
    }

    pub async fn delete_throttle(&self, key: &str) -> Result<(), ApiError> {
        self.execute(sql("DELETE FROM login_throttle WHERE key = $1").bind(key))
            .await?;
        Ok(())
    }

    /// Take one failure off `key` (a login it counted turned out right).
    pub async fn forgive_throttle(&self, key: &str) -> Result<(), ApiError> {
        let s = sql("UPDATE login_throttle SET failures = failures - 1 \
             WHERE key = $1 AND failures > 0")
        .bind(key);
        self.execute(s).await?;
        Ok(())
    }

    /// Delete rows whose last failure and last wait both ended before `cutoff`; how many.
    pub async fn purge_throttle(&self, cutoff: DateTime<Utc>) -> Result<u64, ApiError> {
        let s = sql("DELETE FROM login_throttle WHERE blocked_until < $1 AND last_failure_at < $1")
            .bind(cutoff);
        Ok(self.execute(s).await?)
    }
}
