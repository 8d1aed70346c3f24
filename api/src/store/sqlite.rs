//! The SQLite backend: the default, one file in the data directory.
//!
//! Ids are stored as hyphenated TEXT, times as INTEGER microseconds since the epoch (UTC), JSON
//! as TEXT. SQLite has one writer at a time; a booking is checked and inserted inside
//! `BEGIN IMMEDIATE`, which takes that write lock up front, so the check and the insert are
//! atomic (triggers in the schema are the backstop). Not here: the statements (shared, beside
//! this file), or anything PostgreSQL-specific.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::query::Query;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::Row;
use uuid::Uuid;

use super::backend::{conflict_slot, sql, Backend, Columns, Param, Read, Statement};
use super::migrations;
use crate::config::{ApiConfig, SQLITE_FILE_NAME};
use crate::error::ApiError;
use crate::failpoint;
use crate::model::Booking;

/// How long a connection waits for SQLite's write lock before giving up. Long, because booking
/// transactions queue on it by design (BEGIN IMMEDIATE), and each holds it for microseconds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Trigger message in `migrations/sqlite` for an overlap written around the store.
const OVERLAP_TRIGGER: &str = "booking_overlap";

#[derive(Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// `<data_dir>/bedside.db`, created on first run.
    pub async fn open_default(config: &ApiConfig) -> Result<Self, ApiError> {
        let options = SqliteConnectOptions::new().filename(config.data_dir.join(SQLITE_FILE_NAME));
        Self::connect(options, config).await
    }

    /// A `sqlite:` URL from `DATABASE_URL`.
    pub async fn open_url(url: &str, config: &ApiConfig) -> Result<Self, ApiError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| ApiError::Config(format!("DATABASE_URL: {e}")))?;
        Self::connect(options, config).await
    }

    async fn connect(options: SqliteConnectOptions, config: &ApiConfig) -> Result<Self, ApiError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_db_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }
}

fn query(s: Statement<'_>) -> Query<'_, Sqlite, SqliteArguments<'_>> {
    s.params
        .into_iter()
        .fold(sqlx::query(s.sql), |q, param| match param {
            Param::Id(v) => q.bind(v.map(|id| id.to_string())),
            Param::Time(v) => q.bind(v.map(|t| t.timestamp_micros())),
            Param::Text(v) => q.bind(v),
            Param::Int(v) => q.bind(v),
            Param::Json(v) => q.bind(v.to_string()),
        })
}

impl Backend for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
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
        insert_booking_atomically(&self.pool, b, insert, audit).await
    }

    async fn migrate(&self) -> Result<(), ApiError> {
        migrations::SQLITE.migrator().await?.run(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await
    }
}

/// Check for an overlapping live booking and insert it and its audit row, holding SQLite's
/// write lock throughout.
async fn insert_booking_atomically(
    pool: &SqlitePool,
    b: &Booking,
    insert: Statement<'static>,
    audit: Statement<'static>,
) -> Result<(), ApiError> {
    // A plain (deferred) BEGIN would let two transactions both read "free" and then race for
    // the lock on INSERT, the loser failing with SQLITE_BUSY. IMMEDIATE queues them instead.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let overlap = sql("SELECT id, starts_at, ends_at FROM bookings \
         WHERE robot_id = $1 AND status <> 'cancelled' AND starts_at < $3 AND ends_at > $2 \
         ORDER BY starts_at LIMIT 1")
    .bind(b.robot_id)
    .bind(b.starts_at)
    .bind(b.ends_at);
    if let Some(row) = query(overlap).fetch_optional(&mut *tx).await? {
        // Dropping `tx` rolls back.
        return Err(ApiError::BookingConflict(conflict_slot(&row)?));
    }
    query(insert).execute(&mut *tx).await.map_err(|e| {
        // Only reachable if something wrote around this transaction; the trigger caught it.
        if e.as_database_error()
            .is_some_and(|d| d.message().contains(OVERLAP_TRIGGER))
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

fn time(us: i64) -> Result<DateTime<Utc>, ApiError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| ApiError::internal("timestamp out of range in database"))
}

fn uuid(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::internal("malformed id in database"))
}

impl Columns for SqliteRow {
    fn id(&self, col: &str) -> Result<Uuid, ApiError> {
        uuid(self.try_get(col)?)
    }

    fn opt_id(&self, col: &str) -> Result<Option<Uuid>, ApiError> {
        self.try_get::<Option<&str>, _>(col)?.map(uuid).transpose()
    }

    fn time(&self, col: &str) -> Result<DateTime<Utc>, ApiError> {
        time(self.try_get(col)?)
    }

    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.try_get::<Option<i64>, _>(col)?.map(time).transpose()
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
        let text: String = self.try_get(col)?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}
