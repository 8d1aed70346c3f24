//! The PostgreSQL backend, chosen by `DATABASE_URL=postgres://...` for clusters.
//!
//! Native `uuid`, `timestamptz` and `jsonb` columns. No overlapping bookings is the exclusion
//! constraint `bookings_no_overlap` (btree_gist over robot id and `tstzrange`), so concurrent
//! inserts need no application locking: the loser gets SQLSTATE 23P01. Not here: the statements
//! (shared, beside this file), or anything SQLite-specific.

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
use crate::model::Booking;

/// SQLSTATE exclusion_violation.
const EXCLUSION_VIOLATION: &str = "23P01";

/// Inserts retried when the booking that blocked one is cancelled before it can be named.
const INSERT_ATTEMPTS: usize = 3;

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

    /// The first live booking overlapping `b`. `tstzrange` so that the exclusion constraint's
    /// GiST index answers it.
    async fn first_overlap(&self, b: &Booking) -> Result<Option<PgRow>, ApiError> {
        let s = sql("SELECT id, starts_at, ends_at FROM bookings \
             WHERE robot_id = $1 AND status <> 'cancelled' \
               AND tstzrange(starts_at, ends_at, '[)') && tstzrange($2, $3, '[)') \
             ORDER BY starts_at LIMIT 1")
        .bind(b.robot_id)
        .bind(b.starts_at)
        .bind(b.ends_at);
        Ok(query(s).fetch_optional(&self.pool).await?)
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
    ) -> Result<(), ApiError> {
        for _ in 0..INSERT_ATTEMPTS {
            match query(insert.clone()).execute(&self.pool).await {
                Ok(_) => return Ok(()),
                Err(e) if is_exclusion_violation(&e) => {
                    if let Some(row) = self.first_overlap(b).await? {
                        return Err(ApiError::BookingConflict(conflict_slot(&row)?));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(
            "booking_conflict",
            "the robot is being booked for that time by someone else; try again",
        ))
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

fn is_exclusion_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == EXCLUSION_VIOLATION)
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
