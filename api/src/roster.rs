//! The roster of a robot's room for the robot's own screen: who takes part in the booking that is
//! on now, with their display names, so the robot can say "Dr … is driving".
//!
//! Names go only here, over HTTPS to the robot (or an admin): join tokens, room events and logs
//! carry opaque ids, and the robot matches a `sub` from the room's events against this list.
//! The booking that is "on" is the one in its slot now, or else the next one whose join window
//! has opened. Disabled users are left out (they cannot join).
//!
//! Not here: who is in the room right now (the media plane's presence events), HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::model::{Booking, BookingFilter, BookingStatus, InvitationRole};
use crate::store::Store;

/// How someone takes part in the booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RosterRole {
    /// The booking's doctor, who drives.
    Doctor,
    /// An invited doctor.
    Consultant,
    /// An invited student.
    Observer,
}

/// One participant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RosterEntry {
    /// Their id, as `sub` in the room's events.
    pub sub: String,
    pub display_name: String,
    pub role: RosterRole,
}

/// Of the live bookings ending after now and starting within the join grace, ordered by start,
/// the first: the one in its slot if there is one (no two overlap, and it started earliest),
/// else the next one in its join window.
fn current(bookings: Vec<Booking>) -> Option<Booking> {
    bookings
        .into_iter()
        .find(|b| b.status == BookingStatus::Confirmed)
}

/// The participants of `robot`'s current booking, its doctor first; empty if none is on. The
/// caller has been checked (the robot's credential, or an admin).
pub(crate) async fn roster(
    store: &Store,
    now: DateTime<Utc>,
    grace: chrono::Duration,
    robot: Uuid,
) -> Result<Vec<RosterEntry>, ApiError> {
    if store.robot_by_id(robot).await?.is_none() {
        return Err(ApiError::NotFound("robot"));
    }
    let window_end = now
        .checked_add_signed(grace)
        .ok_or_else(|| ApiError::Config("join_grace is too large".into()))?;
    let bookings = store
        .list_bookings(&BookingFilter {
            robot_id: Some(robot),
            participant: None,
            from: Some(now),
            to: Some(window_end + chrono::Duration::seconds(1)),
            limit: 10,
        })
        .await?;
    let Some(booking) = current(bookings) else {
        return Ok(Vec::new());
    };
    let mut roles = vec![(booking.doctor_id, RosterRole::Doctor)];
    roles.extend(booking.invitations.iter().map(|i| {
        let role = match i.role {
            InvitationRole::Consultant => RosterRole::Consultant,
            InvitationRole::Observer => RosterRole::Observer,
        };
        (i.user_id, role)
    }));
    let ids: Vec<Uuid> = roles.iter().map(|(id, _)| *id).collect();
    let users = store.enabled_users(&ids).await?;
    Ok(roles
        .into_iter()
        .filter_map(|(id, role)| {
            let user = users.iter().find(|u| u.id == id)?;
            Some(RosterEntry {
                sub: id.to_string(),
                display_name: user.display_name.clone(),
                role,
            })
        })
        .collect())
}
