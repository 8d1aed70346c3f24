//! The `audit_log` table: append and read, nothing else (the schema refuses the rest too).
//!
//! Not here: which entries are written (`crate::audit`).

use super::backend::{sql, Backend, Columns, Statement};
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
        let s = sql("SELECT id, at, kind, actor, room, detail FROM audit_log \
             WHERE ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR actor = $2) \
               AND ($3 IS NULL OR room = $3) AND ($4 IS NULL OR at >= $4) \
               AND ($5 IS NULL OR at < $5) AND ($6 IS NULL OR id < $6) \
             ORDER BY id DESC LIMIT $7")
        .bind(f.kind.as_deref())
        .bind(f.actor.as_deref())
        .bind(f.room.as_deref())
        .bind(f.since)
        .bind(f.until)
        .bind(f.before)
        .bind(i64::from(f.limit));
        self.fetch_all(s, entry).await
    }
}
