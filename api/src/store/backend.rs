//! The seam between the statements `store` writes once and the two databases that run them.
//!
//! A [`Statement`] is SQL text with `$1`-style placeholders (both sqlx drivers accept them) and
//! typed [`Param`]s; each backend decides how a param is encoded and how a column is decoded
//! ([`Columns`]), because that is where SQLite and PostgreSQL really differ: ids are TEXT or
//! `uuid`, times INTEGER microseconds or `timestamptz`, JSON TEXT or `jsonb`. [`Backend`] is the
//! short list of what a database must provide, so the compiler holds both to the same
//! operations; the booking overlap guard is part of it because each database makes it atomic
//! its own way.
//!
//! Not here: the statements themselves (one file per table beside this one), connecting.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, ConflictSlot};
use crate::model::Booking;

/// A value to bind, typed by what it means rather than how a database stores it.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    Id(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    Text(Option<String>),
    Int(Option<i64>),
    Json(Value),
}

impl From<Uuid> for Param {
    fn from(v: Uuid) -> Self {
        Param::Id(Some(v))
    }
}

impl From<Option<Uuid>> for Param {
    fn from(v: Option<Uuid>) -> Self {
        Param::Id(v)
    }
}

impl From<DateTime<Utc>> for Param {
    fn from(v: DateTime<Utc>) -> Self {
        Param::Time(Some(v))
    }
}

impl From<Option<DateTime<Utc>>> for Param {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Param::Time(v)
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(Some(v.to_string()))
    }
}

impl From<Option<&str>> for Param {
    fn from(v: Option<&str>) -> Self {
        Param::Text(v.map(str::to_string))
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<Option<i64>> for Param {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}

impl From<&Value> for Param {
    fn from(v: &Value) -> Self {
        Param::Json(v.clone())
    }
}

/// SQL text and its parameters, in placeholder order.
#[derive(Clone, Debug)]
pub(crate) struct Statement<'s> {
    pub sql: &'s str,
    pub params: Vec<Param>,
}

pub(crate) fn sql(text: &str) -> Statement<'_> {
    Statement {
        sql: text,
        params: Vec::new(),
    }
}

impl Statement<'_> {
    pub fn bind(mut self, value: impl Into<Param>) -> Self {
        self.params.push(value.into());
        self
    }
}

/// Reading one column of a result row, decoded the way its backend stores it.
pub(crate) trait Columns {
    fn id(&self, col: &str) -> Result<Uuid, ApiError>;
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>, ApiError>;
    fn time(&self, col: &str) -> Result<DateTime<Utc>, ApiError>;
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, ApiError>;
    fn text(&self, col: &str) -> Result<String, ApiError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, ApiError>;
    fn int(&self, col: &str) -> Result<i64, ApiError>;
    fn json(&self, col: &str) -> Result<Value, ApiError>;
}

/// Turns one result row into a value.
pub(crate) type Read<T> = fn(&dyn Columns) -> Result<T, ApiError>;

/// What a database provides to the shared statements. The futures are `Send` because axum
/// handlers await them on a multi-threaded runtime.
pub(crate) trait Backend {
    /// "sqlite" or "postgres".
    fn name(&self) -> &'static str;

    /// Run a statement; how many rows it changed. The sqlx error is kept so that callers can
    /// tell a unique violation from a failure.
    fn execute(&self, s: Statement<'_>) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Run a query and read every row with `read`.
    fn fetch_all<T: Send>(
        &self,
        s: Statement<'_>,
        read: Read<T>,
    ) -> impl Future<Output = Result<Vec<T>, ApiError>> + Send;

    /// Run `insert` (the booking `b`) and then `audit` (its audit row) in one transaction,
    /// unless a live booking of the same robot overlaps it, in which case the answer is
    /// [`ApiError::BookingConflict`] naming that booking and nothing is written. Callers run
    /// it in a task of its own, so it may hold a transaction across awaits.
    fn insert_without_overlap(
        &self,
        b: &Booking,
        insert: Statement<'static>,
        audit: Statement<'static>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Bring the schema up to date.
    fn migrate(&self) -> impl Future<Output = Result<(), ApiError>> + Send;

    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The booking a new one collides with, from columns `id`, `starts_at`, `ends_at`.
pub(crate) fn conflict_slot(row: &dyn Columns) -> Result<ConflictSlot, ApiError> {
    Ok(ConflictSlot {
        booking_id: row.id("id")?,
        starts_at: row.time("starts_at")?,
        ends_at: row.time("ends_at")?,
    })
}

/// `$1, $2, …, $n`, for an `IN (…)` list of `n` values bound in order.
pub(crate) fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `text` as a LIKE pattern matching values that contain it (with `ESCAPE '\'`): its own `%`,
/// `_` and `\` match only themselves.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `e` as `conflict` if it is a unique violation (the same check on both databases).
pub(crate) fn unique_violation_as(e: sqlx::Error, conflict: ApiError) -> ApiError {
    if e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
    {
        conflict
    } else {
        e.into()
    }
}
