//! A booking, its status and invitations, how a user takes part in one, and the filter the store
//! lists bookings by.
//!
//! Not here: the slot rules, who may see or change a booking (`booking`), the join rule (`join`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Cancelled => "cancelled",
        }
    }

    pub(crate) fn from_db(s: &str) -> Result<Self, ApiError> {
        match s {
            "confirmed" => Ok(BookingStatus::Confirmed),
            "cancelled" => Ok(BookingStatus::Cancelled),
            other => Err(ApiError::internal(format!(
                "unknown booking status {other:?}"
            ))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvitationRole {
    /// A doctor: joins with role `doctor`, may request the lease, may e-stop.
    Consultant,
    /// A student: joins with role `observer`, read-only.
    Observer,
}

impl InvitationRole {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationRole::Consultant => "consultant",
            InvitationRole::Observer => "observer",
        }
    }

    pub(crate) fn from_db(s: &str) -> Result<Self, ApiError> {
        match s {
            "consultant" => Ok(InvitationRole::Consultant),
            "observer" => Ok(InvitationRole::Observer),
            other => Err(ApiError::internal(format!(
                "unknown invitation role {other:?}"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    pub user_id: Uuid,
    pub role: InvitationRole,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Booking {
    pub id: Uuid,
    /// The robot, which is also the room.
    pub robot_id: Uuid,
    /// The booking's doctor: the only one who may drive during the slot.
    pub doctor_id: Uuid,
    /// Inclusive start, whole seconds, UTC.
    pub starts_at: DateTime<Utc>,
    /// Exclusive end, whole seconds, UTC.
    pub ends_at: DateTime<Utc>,
    pub status: BookingStatus,
    pub note: Option<String>,
    pub invitations: Vec<Invitation>,
    /// When an administrator revoked the lease during this booking: from then on its join
    /// tokens carry no control (a new booking is needed to drive). Absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_revoked_at: Option<DateTime<Utc>>,
}

/// How a user takes part in a booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Participation {
    Doctor,
    Invited(InvitationRole),
}

impl Booking {
    pub fn participation(&self, user: Uuid) -> Option<Participation> {
        if self.doctor_id == user {
            return Some(Participation::Doctor);
        }
        self.invitations
            .iter()
            .find(|i| i.user_id == user)
            .map(|i| Participation::Invited(i.role))
    }
}

#[derive(Debug, Clone)]
pub struct BookingFilter {
    pub robot_id: Option<Uuid>,
    /// Only bookings this user is the doctor of or invited to.
    pub participant: Option<Uuid>,
    /// Only bookings ending after this.
    pub from: Option<DateTime<Utc>>,
    /// Only bookings starting before this.
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
}
