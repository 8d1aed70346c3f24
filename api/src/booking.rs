//! Bookings: a doctor reserves a robot for a half-open slot `[starts_at, ends_at)` and invites
//! consultants (doctors) and observers (students). The rules on slots, who sees which booking,
//! and who may cancel or invite live here.
//!
//! Taking access away reaches the media nodes at once: cancelling a booking denies every token
//! of it, removing an invitation denies that participant's tokens for it (cut at this second,
//! so a re-invitation's new tokens pass), through the node channel (`node_hub`).
//!
//! "No two live bookings of one robot overlap" is enforced by the database (see `store`), not
//! here: only the database can decide it atomically. Not here: the `Booking` type (`model`), join
//! tokens (`join`), SQL.

use std::time::Duration;

use bedside_proto::node::{DenyScope, DenyTarget, RevokeReason};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::{kinds, AuditSink};
use crate::error::ApiError;
use crate::instants;
use crate::model::{
    Actor, Booking, BookingFilter, BookingStatus, Invitation, InvitationRole, NewAuditEntry,
    UserRole,
};
use crate::node_hub::NodeHub;
use crate::store::Store;

/// A slot may start this long in the past, so "start now" from a form still books.
pub const PAST_LEEWAY_SECS: i64 = 60;
const NOTE_MAX_CHARS: usize = 500;

fn visible_to(booking: &Booking, actor: &Actor) -> bool {
    actor.user.role == UserRole::Admin || booking.participation(actor.user.id).is_some()
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewBooking {
    pub robot_id: Uuid,
    /// RFC 3339; any offset, stored as UTC; fractions of a second are dropped. Absent: "start
    /// now", from the server's clock (a browser's clock and its form's minute steps do not
    /// decide when an immediate consult starts).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// RFC 3339; exclusive. Give this or `minutes`, not both.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// The slot's length in minutes, counted from its start: the way to say how long a
    /// "start now" booking lasts. Give this or `ends_at`, not both.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub minutes: Option<u32>,
    /// Up to 500 characters. Do not put patient data here.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewInvitation {
    pub user_id: Uuid,
    /// `consultant` for a doctor, `observer` for a student.
    pub role: InvitationRole,
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingQuery {
    /// Only this robot's bookings.
    pub robot_id: Option<Uuid>,
    /// Admins: only bookings they take part in. Others always see only their own.
    pub mine: Option<bool>,
    /// Only bookings ending after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only bookings starting before this instant.
    pub to: Option<DateTime<Utc>>,
    /// At most this many (1-1000, default 200), ordered by start.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Check a requested slot against the rules and normalise it to whole seconds.
pub(crate) fn validate_slot(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max_len: chrono::Duration,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let starts_at = instants::body("starts_at", starts_at)?.trunc_subsecs(0);
    let ends_at = instants::body("ends_at", ends_at)?.trunc_subsecs(0);
    if ends_at <= starts_at {
        return Err(ApiError::validation("ends_at must be after starts_at"));
    }
    if starts_at < now - chrono::Duration::seconds(PAST_LEEWAY_SECS) {
        return Err(ApiError::validation("a booking cannot start in the past"));
    }
    if ends_at - starts_at > max_len {
        return Err(ApiError::validation(format!(
            "a booking may last at most {} minutes",
            max_len.num_minutes()
        )));
    }
    Ok((starts_at, ends_at))
}

/// The slot a request asks for: its start (the server's `now` when absent) and its end (given,
/// or the start plus `minutes`).
fn requested_slot(
    new: &NewBooking,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let starts_at = new.starts_at.unwrap_or_else(|| now.trunc_subsecs(0));
    let ends_at = match (new.ends_at, new.minutes) {
        (Some(end), None) => end,
        (None, Some(minutes)) if minutes > 0 => starts_at
            .checked_add_signed(chrono::Duration::minutes(i64::from(minutes)))
            .ok_or_else(|| ApiError::validation("minutes is too large"))?,
        (None, Some(_)) => return Err(ApiError::validation("minutes must be at least 1")),
        (Some(_), Some(_)) => {
            return Err(ApiError::validation("give ends_at or minutes, not both"))
        }
        (None, None) => return Err(ApiError::validation("ends_at or minutes is required")),
    };
    Ok((starts_at, ends_at))
}

fn validate_note(note: Option<String>) -> Result<Option<String>, ApiError> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > NOTE_MAX_CHARS)
    {
        return Err(ApiError::validation(format!(
            "note must be at most {NOTE_MAX_CHARS} characters"
        )));
    }
    Ok(note)
}

/// `max_booking` is the longest slot allowed.
pub(crate) async fn create(
    store: &Store,
    now: DateTime<Utc>,
    max_booking: Duration,
    actor: &Actor,
    new: NewBooking,
) -> Result<Booking, ApiError> {
    let max_len = chrono::Duration::from_std(max_booking)
        .map_err(|_| ApiError::Config("max_booking is too large".into()))?;
    let (starts_at, ends_at) = requested_slot(&new, now)?;
    let (starts_at, ends_at) = validate_slot(starts_at, ends_at, now, max_len)?;
    let note = validate_note(new.note)?;
    // Retired robots are not booked (409 `robot_retired`).
    crate::robots::in_service(store, new.robot_id).await?;
    let booking = Booking {
        id: Uuid::new_v4(),
        robot_id: new.robot_id,
        doctor_id: actor.user.id,
        starts_at,
        ends_at,
        status: BookingStatus::Confirmed,
        note,
        invitations: Vec::new(),
        control_revoked_at: None,
    };
    // Written with the booking, in its transaction: a booking is never without its audit row,
    // nor an audit row without its booking, whatever happens to the process in between.
    let entry = NewAuditEntry::new(
        now,
        kinds::BOOKING_CREATED,
        Some(actor.user.id.to_string()),
        Some(booking.robot_id.to_string()),
        serde_json::json!({
            "booking": booking.id,
            "starts_at": booking.starts_at,
            "ends_at": booking.ends_at,
        }),
    );
    store.insert_booking(&booking, now, &entry).await?;
    Ok(booking)
}

pub(crate) async fn list(
    store: &Store,
    actor: &Actor,
    q: BookingQuery,
) -> Result<Vec<Booking>, ApiError> {
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit must be 1-1000"));
    }
    let (from, to) = (
        instants::query("from", q.from)?,
        instants::query("to", q.to)?,
    );
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            return Err(ApiError::validation("to must be after from"));
        }
    }
    let everyone = actor.user.role == UserRole::Admin && !q.mine.unwrap_or(false);
    store
        .list_bookings(&BookingFilter {
            robot_id: q.robot_id,
            participant: (!everyone).then_some(actor.user.id),
            from,
            to,
            limit,
        })
        .await
}

/// The booking if `actor` may see it; 404 otherwise, so ids of others' bookings leak nothing.
pub(crate) async fn visible(store: &Store, actor: &Actor, id: Uuid) -> Result<Booking, ApiError> {
    match store.booking_by_id(id).await? {
        Some(b) if visible_to(&b, actor) => Ok(b),
        _ => Err(ApiError::NotFound("booking")),
    }
}

/// Owner or admin. Cancelling a cancelled booking returns it unchanged. Every token of the
/// booking is refused from now on and its live sessions are ended.
pub(crate) async fn cancel(
    store: &Store,
    audit: &AuditSink,
    hub: &NodeHub,
    now: DateTime<Utc>,
    actor: &Actor,
    id: Uuid,
) -> Result<Booking, ApiError> {
    let booking = visible(store, actor, id).await?;
    if booking.doctor_id != actor.user.id && actor.user.role != UserRole::Admin {
        return Err(ApiError::Forbidden(
            "only the booking's doctor or an admin may cancel it",
        ));
    }
    if booking.status == BookingStatus::Cancelled {
        return Ok(booking);
    }
    if booking.ends_at <= now {
        return Err(ApiError::validation("the booking has already ended"));
    }
    if store.cancel_booking(id, now).await? {
        // Its tokens expire at its end, so the entry is needed until then.
        hub.deny(
            DenyTarget::Booking {
                booking: id.to_string(),
            },
            DenyScope::Access,
            None,
            booking.ends_at,
            RevokeReason::BookingCancelled,
        )
        .await?;
    }
    audit
        .record(
            kinds::BOOKING_CANCELLED,
            Some(actor.user.id),
            Some(booking.robot_id),
            serde_json::json!({ "booking": id }),
        )
        .await?;
    visible(store, actor, id).await
}

/// The booking's doctor invites a doctor as consultant or a student as observer.
pub(crate) async fn invite(
    store: &Store,
    audit: &AuditSink,
    now: DateTime<Utc>,
    actor: &Actor,
    id: Uuid,
    new: NewInvitation,
) -> Result<Booking, ApiError> {
    let booking = owned_open(store, now, actor, id).await?;
    let Some(invitee) = store.user_by_id(new.user_id).await? else {
        return Err(ApiError::NotFound("user"));
    };
    let fits = matches!(
        (new.role, invitee.role),
        (InvitationRole::Consultant, UserRole::Doctor)
            | (InvitationRole::Observer, UserRole::Student)
    );
    if !fits {
        return Err(ApiError::validation(
            "consultants must be doctors and observers must be students",
        ));
    }
    if invitee.id == booking.doctor_id {
        return Err(ApiError::validation(
            "the booking's doctor is already in it",
        ));
    }
    let invitation = Invitation {
        user_id: invitee.id,
        role: new.role,
    };
    store.insert_invitation(id, &invitation, now).await?;
    audit
        .record(
            kinds::INVITATION_ADDED,
            Some(actor.user.id),
            Some(booking.robot_id),
            serde_json::json!({ "booking": id, "user": invitee.id, "role": new.role }),
        )
        .await?;
    visible(store, actor, id).await
}

/// The booking's doctor withdraws an invitation; the invitee's tokens for it are refused and
/// their live session ended.
pub(crate) async fn uninvite(
    store: &Store,
    audit: &AuditSink,
    hub: &NodeHub,
    now: DateTime<Utc>,
    actor: &Actor,
    id: Uuid,
    user: Uuid,
) -> Result<(), ApiError> {
    let booking = owned_open(store, now, actor, id).await?;
    if !store.delete_invitation(id, user).await? {
        return Err(ApiError::NotFound("invitation"));
    }
    hub.deny(
        DenyTarget::Participant {
            sub: user.to_string(),
            booking: id.to_string(),
        },
        DenyScope::Access,
        Some(now),
        booking.ends_at,
        RevokeReason::InvitationRemoved,
    )
    .await?;
    audit
        .record(
            kinds::INVITATION_REMOVED,
            Some(actor.user.id),
            Some(booking.robot_id),
            serde_json::json!({ "booking": id, "user": user }),
        )
        .await
}

/// A booking `actor` owns that is neither cancelled nor over: the state invitations need.
async fn owned_open(
    store: &Store,
    now: DateTime<Utc>,
    actor: &Actor,
    id: Uuid,
) -> Result<Booking, ApiError> {
    let booking = visible(store, actor, id).await?;
    if booking.doctor_id != actor.user.id {
        return Err(ApiError::Forbidden(
            "only the booking's doctor may change its invitations",
        ));
    }
    if booking.status == BookingStatus::Cancelled {
        return Err(ApiError::conflict(
            "booking_cancelled",
            "the booking is cancelled",
        ));
    }
    if booking.ends_at <= now {
        return Err(ApiError::validation("the booking has already ended"));
    }
    Ok(booking)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn slot_rules() {
        let now = t("2030-01-01T10:00:00Z");
        let max = chrono::Duration::hours(4);
        let ok = validate_slot(
            t("2030-01-01T11:00:00.750Z"),
            t("2030-01-01T12:00:00Z"),
            now,
            max,
        );
        assert_eq!(
            ok.unwrap(),
            (t("2030-01-01T11:00:00Z"), t("2030-01-01T12:00:00Z"))
        );
        // Exactly the maximum length is fine; a second more is not.
        assert!(validate_slot(
            t("2030-01-01T11:00:00Z"),
            t("2030-01-01T15:00:00Z"),
            now,
            max
        )
        .is_ok());
        assert!(validate_slot(
            t("2030-01-01T11:00:00Z"),
            t("2030-01-01T15:00:01Z"),
            now,
            max
        )
        .is_err());
        assert!(validate_slot(
            t("2030-01-01T12:00:00Z"),
            t("2030-01-01T12:00:00Z"),
            now,
            max
        )
        .is_err());
        assert!(validate_slot(
            t("2030-01-01T12:00:00Z"),
            t("2030-01-01T11:00:00Z"),
            now,
            max
        )
        .is_err());
        assert!(validate_slot(
            t("2030-01-01T09:00:00Z"),
            t("2030-01-01T10:30:00Z"),
            now,
            max
        )
        .is_err());
        // Within the leeway "now" still books.
        assert!(validate_slot(
            t("2030-01-01T09:59:30Z"),
            t("2030-01-01T10:30:00Z"),
            now,
            max
        )
        .is_ok());
    }

    #[test]
    fn notes() {
        assert_eq!(validate_note(Some("  ".into())).unwrap(), None);
        assert_eq!(validate_note(Some(" x ".into())).unwrap(), Some("x".into()));
        assert!(validate_note(Some("n".repeat(501))).is_err());
    }
}
