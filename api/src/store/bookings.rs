//! The `bookings` and `invitations` tables.
//!
//! A booking is always read with its invitations, in one query (a LEFT JOIN, one row per
//! invitation), so a listing is one round trip and one consistent snapshot. Not here: the slot
//! rules or who may see what (`crate::booking`); the overlap guard is per database (`backend`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit_log::append_statement;
use super::backend::{sql, unique_violation_as, Backend, Columns};
use super::handle::Store;
use crate::error::ApiError;
use crate::model::{
    Booking, BookingFilter, BookingStatus, Invitation, InvitationRole, NewAuditEntry,
};

/// Bookings picked by `chosen` (a SELECT of whole `bookings` rows), each row joined with one of
/// its invitations, ordered by start and then as the invitations were made.
fn with_invitations(chosen: &str) -> String {
    format!(
        "SELECT b.id, b.robot_id, b.doctor_id, b.starts_at, b.ends_at, b.status, b.note, \
         b.control_revoked_at, i.user_id AS i_user_id, i.role AS i_role \
         FROM ({chosen}) b LEFT JOIN invitations i ON i.booking_id = b.id \
         ORDER BY b.starts_at, b.id, i.created_at, i.user_id"
    )
}

fn booking_row(row: &dyn Columns) -> Result<(Booking, Option<Invitation>), ApiError> {
    let booking = Booking {
        id: row.id("id")?,
        robot_id: row.id("robot_id")?,
        doctor_id: row.id("doctor_id")?,
        starts_at: row.time("starts_at")?,
        ends_at: row.time("ends_at")?,
        status: BookingStatus::from_db(&row.text("status")?)?,
        note: row.opt_text("note")?,
        invitations: Vec::new(),
        control_revoked_at: row.opt_time("control_revoked_at")?,
    };
    let invitation = match row.opt_id("i_user_id")? {
        Some(user_id) => Some(Invitation {
            user_id,
            role: InvitationRole::from_db(&row.text("i_role")?)?,
        }),
        None => None,
    };
    Ok((booking, invitation))
}

/// Fold the joined rows (a booking's rows are adjacent) back into bookings.
fn group(rows: Vec<(Booking, Option<Invitation>)>) -> Vec<Booking> {
    let mut out: Vec<Booking> = Vec::new();
    for (booking, invitation) in rows {
        match out.last_mut() {
            Some(last) if last.id == booking.id => last.invitations.extend(invitation),
            _ => out.push(Booking {
                invitations: invitation.into_iter().collect(),
                ..booking
            }),
        }
    }
    out
}

impl Store {
    /// Insert booking `b` and its audit entry `audit` in one transaction: both are stored or
    /// neither (a crash between the two INSERTs leaves nothing; `tests/crash.rs`). An overlap
    /// with a live booking of the same robot is `BookingConflict`.
    pub async fn insert_booking(
        &self,
        b: &Booking,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<(), ApiError> {
        let insert = sql(
            "INSERT INTO bookings (id, robot_id, doctor_id, starts_at, ends_at, status, \
             note, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(b.id)
        .bind(b.robot_id)
        .bind(b.doctor_id)
        .bind(b.starts_at)
        .bind(b.ends_at)
        .bind(b.status.as_str())
        .bind(b.note.as_deref())
        .bind(at);
        let audit = append_statement(audit);
        let store = self.clone();
        let b = b.clone();
        // Its own task, so a client that hangs up cannot cancel the request inside the backend's
        // transaction and leave a pooled connection holding SQLite's write lock or the robot's
        // row lock.
        tokio::spawn(async move { store.insert_without_overlap(&b, insert, audit).await })
            .await
            .map_err(|e| ApiError::internal(format!("booking task failed: {e}")))?
    }

    pub async fn booking_by_id(&self, id: Uuid) -> Result<Option<Booking>, ApiError> {
        let text = with_invitations("SELECT * FROM bookings WHERE id = $1");
        let rows = self.fetch_all(sql(&text).bind(id), booking_row).await?;
        Ok(group(rows).pop())
    }

    pub async fn list_bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>, ApiError> {
        let text = with_invitations(
            "SELECT bk.* FROM bookings bk \
             WHERE ($1 IS NULL OR bk.robot_id = $1) \
               AND ($2 IS NULL OR bk.doctor_id = $2 OR EXISTS ( \
                    SELECT 1 FROM invitations inv WHERE inv.booking_id = bk.id AND inv.user_id = $2)) \
               AND ($3 IS NULL OR bk.ends_at > $3) \
               AND ($4 IS NULL OR bk.starts_at < $4) \
             ORDER BY bk.starts_at, bk.id LIMIT $5",
        );
        let s = sql(&text)
            .bind(f.robot_id)
            .bind(f.participant)
            .bind(f.from)
            .bind(f.to)
            .bind(i64::from(f.limit));
        Ok(group(self.fetch_all(s, booking_row).await?))
    }

    /// False if there is no such booking or it was already cancelled.
    pub async fn cancel_booking(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, ApiError> {
        let s = sql(
            "UPDATE bookings SET status = 'cancelled', cancelled_at = $2 \
             WHERE id = $1 AND status <> 'cancelled'",
        )
        .bind(id)
        .bind(at);
        Ok(self.execute(s).await? == 1)
    }

    /// The live booking of `robot` whose slot contains `at`, if any (at most one: no overlaps).
    pub async fn booking_in_slot(
        &self,
        robot: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Booking>, ApiError> {
        let text = with_invitations(
            "SELECT * FROM bookings WHERE robot_id = $1 AND status <> 'cancelled' \
             AND starts_at <= $2 AND ends_at > $2",
        );
        let rows = self
            .fetch_all(sql(&text).bind(robot).bind(at), booking_row)
            .await?;
        Ok(group(rows).pop())
    }

    /// Record that control was revoked during booking `id` (the first time counts).
    pub async fn set_control_revoked(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), ApiError> {
        let s = sql("UPDATE bookings SET control_revoked_at = $2 \
             WHERE id = $1 AND control_revoked_at IS NULL")
        .bind(id)
        .bind(at);
        self.execute(s).await?;
        Ok(())
    }

    /// A repeated invitation is `Conflict { code: "already_invited" }`.
    pub async fn insert_invitation(
        &self,
        booking_id: Uuid,
        inv: &Invitation,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let s = sql(
            "INSERT INTO invitations (booking_id, user_id, role, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(booking_id)
        .bind(inv.user_id)
        .bind(inv.role.as_str())
        .bind(at);
        self.execute(s).await.map_err(|e| {
            unique_violation_as(
                e,
                ApiError::conflict("already_invited", "that user is already invited"),
            )
        })?;
        Ok(())
    }

    /// False if there was no such invitation.
    pub async fn delete_invitation(
        &self,
        booking_id: Uuid,
        user_id: Uuid,
    ) -> Result<bool, ApiError> {
        let s = sql("DELETE FROM invitations WHERE booking_id = $1 AND user_id = $2")
            .bind(booking_id)
            .bind(user_id);
        Ok(self.execute(s).await? == 1)
    }
}
