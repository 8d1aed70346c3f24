//! The tables behind the node channel: `node_denies` (the deny list media nodes enforce) and
//! `room_latches` (rooms whose e-stop is latched), so that both survive an API restart and are
//! shared by API replicas.
//!
//! Not here: when to deny or latch (`crate::node_hub` and the domain modules).

use bedside_proto::node::{Deny, Latch};
use chrono::{DateTime, Utc};

use super::backend::{sql, Backend, Columns};
use super::handle::Store;
use crate::error::ApiError;

fn numbered_deny(row: &dyn Columns) -> Result<(i64, Deny), ApiError> {
    let deny = serde_json::from_value(row.json("deny")?)
        .map_err(|e| ApiError::internal(format!("malformed deny entry in database: {e}")))?;
    Ok((row.int("seq")?, deny))
}

impl Store {
    /// Append a deny entry in force until `until`; its sequence number.
    pub async fn insert_deny(
        &self,
        deny: &Deny,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<i64, ApiError> {
        let json = serde_json::to_value(deny)
            .map_err(|e| ApiError::internal(format!("encoding a deny entry: {e}")))?;
        let s = sql(
            "INSERT INTO node_denies (deny, until_at, created_at) VALUES ($1, $2, $3) \
             RETURNING seq",
        )
        .bind(&json)
        .bind(until)
        .bind(at);
        self.fetch_optional(s, |row| row.int("seq"))
            .await?
            .ok_or_else(|| ApiError::internal("insert returned no row"))
    }

    /// Entries still in force at `now`, oldest first.
    pub async fn denies_in_force(&self, now: DateTime<Utc>) -> Result<Vec<(i64, Deny)>, ApiError> {
        let s = sql("SELECT seq, deny FROM node_denies WHERE until_at > $1 ORDER BY seq").bind(now);
        self.fetch_all(s, numbered_deny).await
    }

    /// Entries numbered above `seq`, oldest first.
    pub async fn denies_after(&self, seq: i64) -> Result<Vec<(i64, Deny)>, ApiError> {
        let s = sql("SELECT seq, deny FROM node_denies WHERE seq > $1 ORDER BY seq").bind(seq);
        self.fetch_all(s, numbered_deny).await
    }

    /// The highest sequence number so far (0 if none).
    pub async fn last_deny_seq(&self) -> Result<i64, ApiError> {
        let s = sql("SELECT COALESCE(MAX(seq), 0) AS n FROM node_denies");
        Ok(self
            .fetch_optional(s, |row| row.int("n"))
            .await?
            .unwrap_or(0))
    }

    /// Forget entries no token can match any more; how many.
    pub async fn prune_denies(&self, now: DateTime<Utc>) -> Result<u64, ApiError> {
        let s = sql("DELETE FROM node_denies WHERE until_at <= $1").bind(now);
        Ok(self.execute(s).await?)
    }

    /// `room` is latched (by `by`); latching again keeps one row.
    pub async fn set_latch(
        &self,
        room: &str,
        by: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let s = sql(
            "INSERT INTO room_latches (room, latched_by, latched_at) VALUES ($1, $2, $3) \
             ON CONFLICT (room) DO UPDATE SET latched_by = excluded.latched_by, \
             latched_at = excluded.latched_at",
        )
        .bind(room)
        .bind(by)
        .bind(at);
        self.execute(s).await?;
        Ok(())
    }

    pub async fn clear_latch(&self, room: &str) -> Result<(), ApiError> {
        self.execute(sql("DELETE FROM room_latches WHERE room = $1").bind(room))
            .await?;
        Ok(())
    }

    pub async fn latches(&self) -> Result<Vec<Latch>, ApiError> {
        let s = sql("SELECT room, latched_by FROM room_latches ORDER BY room");
        self.fetch_all(s, |row| {
            Ok(Latch {
                room: row.text("room")?,
                by: row.opt_text("latched_by")?,
            })
        })
        .await
    }
}
