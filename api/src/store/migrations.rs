//! The SQL migrations in `migrations/sqlite` and `migrations/postgres`, compiled into the binary
//! with `include_str!` so `bedside` runs from any directory.
//!
//! Embedding by hand instead of with `sqlx::migrate!` keeps sqlx's proc-macro crate, and with it
//! a second build of the database drivers, out of the compile. Adding a migration means adding a
//! file and a line here; a test fails if the two disagree. Not here: the SQL itself.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// (version, description, SQL), in order.
type Steps = &'static [(i64, &'static str, &'static str)];

pub const SQLITE: Embedded = Embedded(&[
    (
        1,
        "init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "authority",
        include_str!("../../../migrations/sqlite/0002_authority.sql"),
    ),
    (
        3,
        "admin_console",
        include_str!("../../../migrations/sqlite/0003_admin_console.sql"),
    ),
]);

pub const POSTGRES: Embedded = Embedded(&[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "authority",
        include_str!("../../../migrations/postgres/0002_authority.sql"),
    ),
    (
        3,
        "admin_console",
        include_str!("../../../migrations/postgres/0003_admin_console.sql"),
    ),
]);

#[derive(Debug, Clone, Copy)]
pub struct Embedded(Steps);

impl Embedded {
    pub async fn migrator(self) -> Result<Migrator, sqlx::migrate::MigrateError> {
        Migrator::new(self).await
    }
}

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let steps = self.0;
        Box::pin(async move {
            Ok(steps
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &str) -> Vec<(i64, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(dir);
        let mut out: Vec<(i64, String)> = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".sql")?;
                let (v, d) = stem.split_once('_')?;
                Some((v.parse().ok()?, d.to_string()))
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_migration_file_is_embedded() {
        for (dir, set) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let embedded: Vec<(i64, String)> =
                set.0.iter().map(|(v, d, _)| (*v, d.to_string())).collect();
            assert_eq!(
                files(dir),
                embedded,
                "migrations/{dir} and store/migrations.rs differ"
            );
        }
    }
}
