//! [`Store`], the handle: which of the two backends is in use, opening it, and passing each
//! [`Backend`] call to it. The operations on it are in the per-table files beside this one.
//!
//! Not here: SQL, or anything that differs between the databases (`sqlite`, `postgres`).

use super::backend::{Backend, Read, Statement};
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use crate::config::{is_postgres_url, ApiConfig};
use crate::error::ApiError;
use crate::model::Booking;

#[derive(Clone)]
pub(crate) enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Connect to the configured database and bring its schema up to date.
    pub async fn open(config: &ApiConfig) -> Result<Store, ApiError> {
        let store = match config.database_url.as_deref() {
            Some(url) if is_postgres_url(url) => {
                Store::Postgres(PgStore::connect(url, config).await?)
            }
            Some(url) if url.starts_with("sqlite:") => {
                Store::Sqlite(SqliteStore::open_url(url, config).await?)
            }
            Some(_) => {
                return Err(ApiError::Config(
                    "DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into(),
                ))
            }
            None => {
                create_dir_private(&config.data_dir)?;
                Store::Sqlite(SqliteStore::open_default(config).await?)
            }
        };
        store.migrate().await?;
        crate::failpoint::arm_from_env();
        tracing::info!(backend = store.backend_name(), "database ready");
        Ok(store)
    }

    /// "sqlite" or "postgres".
    pub fn backend_name(&self) -> &'static str {
        Backend::name(self)
    }

    /// Close the pool; later operations fail.
    pub async fn close(&self) {
        Backend::close(self).await
    }
}

impl Backend for Store {
    fn name(&self) -> &'static str {
        match self {
            Store::Sqlite(db) => db.name(),
            Store::Postgres(db) => db.name(),
        }
    }

    async fn execute(&self, s: Statement<'_>) -> Result<u64, sqlx::Error> {
        match self {
            Store::Sqlite(db) => db.execute(s).await,
            Store::Postgres(db) => db.execute(s).await,
        }
    }

    async fn fetch_all<T: Send>(
        &self,
        s: Statement<'_>,
        read: Read<T>,
    ) -> Result<Vec<T>, ApiError> {
        match self {
            Store::Sqlite(db) => db.fetch_all(s, read).await,
            Store::Postgres(db) => db.fetch_all(s, read).await,
        }
    }

    async fn insert_without_overlap(
        &self,
        b: &Booking,
        insert: Statement<'static>,
        audit: Statement<'static>,
    ) -> Result<(), ApiError> {
        match self {
            Store::Sqlite(db) => db.insert_without_overlap(b, insert, audit).await,
            Store::Postgres(db) => db.insert_without_overlap(b, insert, audit).await,
        }
    }

    async fn migrate(&self) -> Result<(), ApiError> {
        match self {
            Store::Sqlite(db) => db.migrate().await,
            Store::Postgres(db) => db.migrate().await,
        }
    }

    async fn close(&self) {
        match self {
            Store::Sqlite(db) => db.close().await,
            Store::Postgres(db) => db.close().await,
        }
    }
}

impl Store {
    /// The row of a lookup by a unique key, if any. Reads through `fetch_all` so that the
    /// backends need one way of fetching rows, not two.
    pub(super) async fn fetch_optional<T: Send>(
        &self,
        s: Statement<'_>,
        read: Read<T>,
    ) -> Result<Option<T>, ApiError> {
        Ok(self.fetch_all(s, read).await?.into_iter().next())
    }
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
