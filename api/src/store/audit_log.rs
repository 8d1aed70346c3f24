//! The `audit_log` table: append and read, nothing else (the schema refuses the rest too).
//!
//! Not here: which entries are written (`crate::audit`).

use super::backend::{contains_pattern, sql, Backend, Columns, Statement};
use super::handle::Store;
use crate::error::ApiError;
use crate::model::{AuditEntry, AuditFilter, NewAuditEntry};

fn entry(row: &dyn Columns) -> Result<AuditEntry, ApiError> {
    Ok(AuditEntry {
        id: row.int("id")?,
        at: row.time("at")?,
        kind: row.text("kind")?,
        actor: row.opt_text("actor")?,
        room: row.opt_text("room")?,
        detail: row.json("detail")?,
        actor_name: None,
        actor_kind: None,
        robot_name: None,
    })
}

/// The INSERT of one entry, also run inside other writes' transactions (a booking and its
/// `booking.created` row are one transaction: `bookings.rs`).
pub(super) fn append_statement(e: &NewAuditEntry) -> Statement<'static> {
    sql("INSERT INTO audit_log (at, kind, actor, room, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(e.at)
        .bind(e.kind.as_str())
        .bind(e.actor.as_deref())
        .bind(e.room.as_deref())
        .bind(&e.detail)
}

impl Store {
    pub async fn append_audit(&self, e: &NewAuditEntry) -> Result<(), ApiError> {
        self.execute(append_statement(e)).await?;
        Ok(())
    }

    /// Newest first.
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, ApiError> {
        let text = format!(
            "SELECT id, at, kind, actor, room, detail FROM audit_log {FILTER} \
             AND ($7 IS NULL OR id < $7) ORDER BY id DESC LIMIT $8"
        );
        let s = filter(sql(&text), f)
            .bind(f.before)
            .bind(i64::from(f.limit));
        self.fetch_all(s, entry).await
    }

    /// How many entries `f` matches, whatever its cursor and limit.
    pub async fn count_audit(&self, f: &AuditFilter) -> Result<i64, ApiError> {
        let text = format!("SELECT COUNT(*) AS n FROM audit_log {FILTER}");
        let n = self
            .fetch_optional(filter(sql(&text), f), |row| row.int("n"))
            .await?;
        Ok(n.unwrap_or(0))
    }
}

/// The conditions of an [`AuditFilter`] but its cursor, on `$1`-`$6` ([`filter`] binds them).
const FILTER: &str = "WHERE ($1 IS NULL OR kind = $1) \
       AND ($2 IS NULL OR kind LIKE $2 ESCAPE '\\') AND ($3 IS NULL OR actor = $3) \
       AND ($4 IS NULL OR room = $4) AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6)";

fn filter<'s>(s: Statement<'s>, f: &AuditFilter) -> Statement<'s> {
    let prefix = f.kind_prefix.as_deref().map(|p| {
        let mut pattern = contains_pattern(p);
        pattern.remove(0);
        pattern
    });
    s.bind(f.kind.as_deref())
        .bind(prefix.as_deref())
        .bind(f.actor.as_deref())
        .bind(f.room.as_deref())
        .bind(f.since)
        .bind(f.until)
}
