//! Persistence: the only place with SQL. [`Store`] is SQLite (default) or PostgreSQL, each a
//! small implementation of the same methods, because the two differ where it matters (types,
//! and how "no overlapping bookings" is made atomic).
//!
//! Methods take and return domain types and say nothing about HTTP or permissions. Not here:
//! business rules (the domain modules decide; the store records), and no UPDATE or DELETE of
//! audit entries, ever.

mod migrations;
mod postgres;
mod sqlite;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use uuid::Uuid;

use crate::config::{is_postgres_url, ApiConfig, SQLITE_FILE_NAME};
use crate::error::ApiError;
use crate::model::{
    AuditEntry, AuditFilter, Booking, BookingFilter, Invitation, NewAuditEntry, Robot,
    SessionRecord, User, UserRole,
};

pub(crate) use postgres::PgStore;
pub(crate) use sqlite::SqliteStore;

#[derive(Clone)]
pub(crate) enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// How long a connection waits for SQLite's write lock before giving up. Long, because booking
/// transactions queue on it by design (BEGIN IMMEDIATE), and each holds it for microseconds.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

impl Store {
    /// Connect to the configured database and bring its schema up to date.
    pub async fn open(config: &ApiConfig) -> Result<Store, ApiError> {
        let store = match config.database_url.as_deref() {
            Some(url) if is_postgres_url(url) => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| ApiError::Config(format!("DATABASE_URL: {e}")))?;
                let pool = PgPoolOptions::new()
                    .max_connections(config.max_db_connections.max(1))
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?;
                Store::Postgres(PgStore::new(pool))
            }
            Some(url) if url.starts_with("sqlite:") => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| ApiError::Config(format!("DATABASE_URL: {e}")))?;
                Store::Sqlite(SqliteStore::connect(sqlite_options(options), config).await?)
            }
            Some(_) => {
                return Err(ApiError::Config(
                    "DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into(),
                ))
            }
            None => {
                create_dir_private(&config.data_dir)?;
                let options =
                    SqliteConnectOptions::new().filename(config.data_dir.join(SQLITE_FILE_NAME));
                Store::Sqlite(SqliteStore::connect(sqlite_options(options), config).await?)
            }
        };
        store.migrate().await?;
        tracing::info!(backend = store.backend_name(), "database ready");
        Ok(store)
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    pub async fn migrate(&self) -> Result<(), ApiError> {
        match self {
            Store::Sqlite(s) => s.migrate(migrations::SQLITE.migrator().await?).await,
            Store::Postgres(s) => s.migrate(migrations::POSTGRES.migrator().await?).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

fn sqlite_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
}

pub(crate) fn create_dir_private(dir: &std::path::Path) -> Result<(), ApiError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| ApiError::Config(format!("creating {}: {e}", dir.display())))
}

/// Forward each listed method to the backend in use.
macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, ApiError> {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    // Users. A taken username is `Conflict { code: "username_taken" }`.
    fn insert_user(&self, user: &User, password_hash: &str, at: DateTime<Utc>) -> ();
    fn user_by_id(&self, id: Uuid) -> Option<User>;
    fn login_record(&self, username: &str) -> Option<(User, String)>;
    fn list_users(&self, role: Option<UserRole>) -> Vec<User>;
    fn count_admins(&self) -> i64;

    // Sessions.
    fn insert_session(&self, s: &SessionRecord) -> ();
    fn session_by_access(&self, access_hash: &str) -> Option<(SessionRecord, User)>;
    fn session_by_refresh(&self, refresh_hash: &str) -> Option<(SessionRecord, User)>;
    fn touch_session(&self, id: Uuid, at: DateTime<Utc>) -> ();
    // Replace the tokens of `next.id` if its refresh token is still `old_refresh_hash`.
    fn rotate_session(&self, old_refresh_hash: &str, next: &SessionRecord) -> bool;
    fn delete_session(&self, id: Uuid) -> ();
    fn purge_sessions(&self, now: DateTime<Utc>, idle_cutoff: DateTime<Utc>) -> u64;

    // Robots.
    fn insert_robot(&self, robot: &Robot, credential_hash: &str, at: DateTime<Utc>) -> ();
    fn list_robots(&self) -> Vec<Robot>;
    fn robot_by_id(&self, id: Uuid) -> Option<Robot>;
    fn robot_credential_hash(&self, id: Uuid) -> Option<String>;
    fn set_robot_credential(&self, id: Uuid, credential_hash: &str) -> bool;

    // Bookings. An overlap with a live booking of the same robot is `BookingConflict`.
    fn insert_booking(&self, b: &Booking, at: DateTime<Utc>) -> ();
    fn booking_by_id(&self, id: Uuid) -> Option<Booking>;
    fn list_bookings(&self, f: &BookingFilter) -> Vec<Booking>;
    fn cancel_booking(&self, id: Uuid, at: DateTime<Utc>) -> bool;
    // A repeated invitation is `Conflict { code: "already_invited" }`.
    fn insert_invitation(&self, booking_id: Uuid, inv: &Invitation, at: DateTime<Utc>) -> ();
    fn delete_invitation(&self, booking_id: Uuid, user_id: Uuid) -> bool;

    // Audit log: append and read, nothing else.
    fn append_audit(&self, e: &NewAuditEntry) -> ();
    fn list_audit(&self, f: &AuditFilter) -> Vec<AuditEntry>;
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

pub(crate) fn username_taken() -> ApiError {
    ApiError::conflict("username_taken", "that username is taken")
}

pub(crate) fn already_invited() -> ApiError {
    ApiError::conflict("already_invited", "that user is already invited")
}
