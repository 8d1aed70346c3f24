//! The PostgreSQL backend, chosen by `DATABASE_URL=postgres://...` for clusters.
//!
//! Native `uuid`, `timestamptz` and `jsonb` columns. No overlapping bookings is the exclusion
//! constraint `bookings_no_overlap` (btree_gist over robot id and `tstzrange`). A booking is
//! inserted in a transaction that first locks its robot's row, so bookings of one robot queue
//! instead of racing: two inserts checking the constraint at once can each find the other's
//! uncommitted row, wait on each other and end in a deadlock (SQLSTATE 40P01) that PostgreSQL
//! only breaks after `deadlock_timeout`. Under the lock the overlap is looked up first, so the
//! answer names the clashing booking; the constraint stays the guarantee (23P01). Not here: the
//! statements (shared, beside this file), or anything SQLite-specific.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow, Postgres};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use super::backend::{conflict_slot, sql, Backend, Columns, Param, Read, Statement};
use super::migrations;
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::failpoint;
use crate::model::Booking;

/// SQLSTATE exclusion_violation.
const EXCLUSION_VIOLATION: &str = "23P01";

#[derive(Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str, config: &ApiConfig) -> Result<Self, ApiError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| ApiError::Config(format!("DATABASE_URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_db_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(PgStore { pool })
    }
}

fn query(s: Statement<'_>) -> Query<'_, Postgres, PgArguments> {
    s.params
        .into_iter()
        .fold(sqlx::query(s.sql), |q, param| match param {
            Param::Id(v) => q.bind(v),
            Param::Time(v) => q.bind(v),
            Param::Text(v) => q.bind(v),
            Param::Int(v) => q.bind(v),
            Param::Json(v) => q.bind(Json(v)),
        })
}

impl Backend for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn execute(&self, s: Statement<'_>) -> Result<u64, sqlx::Error> {
        Ok(query(s).execute(&self.pool).await?.rows_affected())
    }

    async fn fetch_all<T: Send>(
        &self,
        s: Statement<'_>,
        read: Read<T>,
    ) -> Result<Vec<T>, ApiError> {
        let rows = query(s).fetch_all(&self.pool).await?;
        rows.iter().map(|row| read(row)).collect()
    }

    async fn insert_without_overlap(
        &self,
        b: &Booking,
        insert: Statement<'static>,
        audit: Statement<'static>,
    ) -> Result<(), ApiError> {
        insert_booking_queued(&self.pool, b, insert, audit).await
    }

    async fn migrate(&self) -> Result<(), ApiError> {
        migrations::POSTGRES
            .migrator()
            .await?
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await
    }
}

/// Lock the robot's row, look for an overlapping live booking, insert the booking and its
/// audit row if there is none.
async fn insert_booking_queued(
    pool: &PgPool,
    b: &Booking,
    insert: Statement<'static>,
    audit: Statement<'static>,
) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    // NO KEY UPDATE: queues bookings of this robot on each other but not on the foreign-key
    // checks (KEY SHARE) of rows that reference the robot.
    let lock = sql("SELECT id FROM robots WHERE id = $1 FOR NO KEY UPDATE").bind(b.robot_id);
    query(lock).execute(&mut *tx).await?;
    // `tstzrange` so that the exclusion constraint's GiST index answers it.
    let overlap = sql("SELECT id, starts_at, ends_at FROM bookings \
         WHERE robot_id = $1 AND status <> 'cancelled' \
           AND tstzrange(starts_at, ends_at, '[)') && tstzrange($2, $3, '[)') \
         ORDER BY starts_at LIMIT 1")
    .bind(b.robot_id)
    .bind(b.starts_at)
    .bind(b.ends_at);
    if let Some(row) = query(overlap).fetch_optional(&mut *tx).await? {
        // Dropping `tx` rolls back.
        return Err(ApiError::BookingConflict(conflict_slot(&row)?));
    }
    query(insert).execute(&mut *tx).await.map_err(|e| {
        // Only reachable if something wrote around the lock; the constraint caught it.
        if e.as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == EXCLUSION_VIOLATION)
        {
            ApiError::conflict(
                "booking_conflict",
                "the robot is already booked for that time",
            )
        } else {
            e.into()
        }
    })?;
    failpoint::hit(failpoint::AFTER_BOOKING_INSERT);
    query(audit).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

impl Columns for PgRow {
    fn id(&self, col: &str) -> Result<Uuid, ApiError> {
        Ok(self.try_get(col)?)
    }

    fn opt_id(&self, col: &str) -> Result<Option<Uuid>, ApiError> {
        Ok(self.try_get(col)?)
    }

    fn time(&self, col: &str) -> Result<DateTime<Utc>, ApiError> {
        Ok(self.try_get(col)?)
    }

    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        Ok(self.try_get(col)?)
    }

    fn text(&self, col: &str) -> Result<String, ApiError> {
        Ok(self.try_get(col)?)
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>, ApiError> {
        Ok(self.try_get(col)?)
    }

    fn int(&self, col: &str) -> Result<i64, ApiError> {
        Ok(self.try_get(col)?)
    }

    fn json(&self, col: &str) -> Result<Value, ApiError> {
        let Json(value): Json<Value> = self.try_get(col)?;
        Ok(value)
    }
}
