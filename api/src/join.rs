//! Join tokens for people: who may enter a booking's room, with which role, whether they may take
//! the control lease, and for how long.
//!
//! [`decide`] is the whole rule, a pure function of the booking, the user and the time:
//! - the booking's doctor and its consultants join as `doctor`, observers as `observer`;
//! - joining opens `join_grace` before the start and closes at the end;
//! - `can_control` only for the booking's doctor and only once the slot has started. During the
//!   grace period a back-to-back predecessor may still be driving, so the doctor joins without
//!   control and joins again at the start to get it. Never after an administrator revoked the
//!   lease during the booking: driving again takes a new booking;
//! - the token expires at the slot's end, never later, and so do the TURN credentials beside it.
//!
//! Not here: the token format and signature (`bedside_proto::join_token`), lease handling (SFU).

use bedside_proto::{Claims, Role, TokenSigner};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{kinds, AuditSink};
use crate::booking;
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::keys::{sign, unix};
use crate::model::{Actor, Booking, BookingStatus, InvitationRole, Participation};
use crate::store::Store;
use crate::turn::IceServer;

/// What [`decide`] grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinGrant {
    pub role: Role,
    pub can_control: bool,
    pub expires_at: DateTime<Utc>,
}

/// What a participant needs to watch: `POST {whep_url}` with `Authorization: Bearer {token}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct JoinResponse {
    /// The room, which is the robot's id.
    pub room: String,
    pub whep_url: String,
    pub token: String,
    /// `doctor` or `observer`.
    #[schema(example = "doctor")]
    pub role: String,
    /// May take the control lease. False before the slot starts: join again at the start.
    pub can_control: bool,
    /// The token's expiry: the end of the slot.
    pub expires_at: DateTime<Utc>,
    /// TURN relays with credentials that expire with the token, for networks that block UDP to
    /// the media nodes: pass as `RTCConfiguration.iceServers`. Absent when none is configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
}

pub fn decide(
    booking: &Booking,
    user: Uuid,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> Result<JoinGrant, ApiError> {
    let Some(participation) = booking.participation(user) else {
        return Err(ApiError::Forbidden(
            "only the booking's doctor and invited users may join",
        ));
    };
    if booking.status == BookingStatus::Cancelled {
        return Err(ApiError::conflict(
            "booking_cancelled",
            "the booking is cancelled",
        ));
    }
    if now < booking.starts_at - grace {
        return Err(ApiError::OutsideJoinWindow(format!(
            "joining opens at {}",
            (booking.starts_at - grace).to_rfc3339()
        )));
    }
    if now >= booking.ends_at {
        return Err(ApiError::OutsideJoinWindow(format!(
            "the booking ended at {}",
            booking.ends_at.to_rfc3339()
        )));
    }
    let (role, can_control) = match participation {
        Participation::Doctor => (
            Role::Doctor,
            now >= booking.starts_at && booking.control_revoked_at.is_none(),
        ),
        Participation::Invited(InvitationRole::Consultant) => (Role::Doctor, false),
        Participation::Invited(InvitationRole::Observer) => (Role::Observer, false),
    };
    Ok(JoinGrant {
        role,
        can_control,
        expires_at: booking.ends_at,
    })
}

/// A join token for `actor` to enter the room of booking `booking_id`, by [`decide`].
pub(crate) async fn join(
    store: &Store,
    audit: &AuditSink,
    signer: &TokenSigner,
    config: &ApiConfig,
    now: DateTime<Utc>,
    actor: &Actor,
    booking_id: Uuid,
) -> Result<JoinResponse, ApiError> {
    let booking = booking::visible(store, actor, booking_id).await?;
    let grace = chrono::Duration::from_std(config.join_grace)
        .map_err(|_| ApiError::Config("join_grace is too large".into()))?;
    let grant = decide(&booking, actor.user.id, now, grace)?;
    let room = booking.robot_id.to_string();
    let claims = Claims {
        sub: actor.user.id.to_string(),
        room: room.clone(),
        role: grant.role,
        can_control: grant.can_control,
        booking: Some(booking.id.to_string()),
        iat: unix(now),
        nbf: unix(now),
        exp: unix(grant.expires_at),
        jti: Uuid::new_v4().to_string(),
    };
    let token = sign(signer, &claims)?;
    audit
        .record(
            kinds::TOKEN_JOIN,
            Some(actor.user.id),
            Some(booking.robot_id),
            serde_json::json!({
                "booking": booking.id,
                "role": grant.role.as_str(),
                "can_control": grant.can_control,
                "jti": claims.jti,
            }),
        )
        .await?;
    let ice_servers = config
        .turn
        .as_ref()
        .map(|t| t.ice_servers(&claims.jti, grant.expires_at))
        .unwrap_or_default();
    Ok(JoinResponse {
        ice_servers,
        whep_url: config.whep_url(&room),
        room,
        token,
        role: grant.role.as_str().to_string(),
        can_control: grant.can_control,
        expires_at: grant.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn booking() -> (Booking, Uuid, Uuid, Uuid) {
        let (doctor, consultant, observer) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let b = Booking {
            id: Uuid::new_v4(),
            robot_id: Uuid::new_v4(),
            doctor_id: doctor,
            starts_at: t("2030-01-01T10:00:00Z"),
            ends_at: t("2030-01-01T11:00:00Z"),
            status: BookingStatus::Confirmed,
            note: None,
            invitations: vec![
                crate::model::Invitation {
                    user_id: consultant,
                    role: InvitationRole::Consultant,
                },
                crate::model::Invitation {
                    user_id: observer,
                    role: InvitationRole::Observer,
                },
            ],
            control_revoked_at: None,
        };
        (b, doctor, consultant, observer)
    }

    #[test]
    fn window_roles_and_control() {
        let (b, doctor, consultant, observer) = booking();
        let grace = chrono::Duration::minutes(5);
        let before = t("2030-01-01T09:54:59Z");
        let in_grace = t("2030-01-01T09:55:00Z");
        let started = t("2030-01-01T10:00:00Z");
        let last_second = t("2030-01-01T10:59:59Z");
        let ended = t("2030-01-01T11:00:00Z");

        assert!(matches!(
            decide(&b, doctor, before, grace),
            Err(ApiError::OutsideJoinWindow(_))
        ));
        assert!(matches!(
            decide(&b, doctor, ended, grace),
            Err(ApiError::OutsideJoinWindow(_))
        ));

        let g = decide(&b, doctor, in_grace, grace).unwrap();
        assert_eq!((g.role, g.can_control), (Role::Doctor, false));
        let g = decide(&b, doctor, started, grace).unwrap();
        assert_eq!(
            (g.role, g.can_control, g.expires_at),
            (Role::Doctor, true, b.ends_at)
        );
        assert!(decide(&b, doctor, last_second, grace).unwrap().can_control);

        let g = decide(&b, consultant, started, grace).unwrap();
        assert_eq!((g.role, g.can_control), (Role::Doctor, false));
        let g = decide(&b, observer, started, grace).unwrap();
        assert_eq!((g.role, g.can_control), (Role::Observer, false));

        assert!(matches!(
            decide(&b, Uuid::new_v4(), started, grace),
            Err(ApiError::Forbidden(_))
        ));
        let mut revoked = b.clone();
        revoked.control_revoked_at = Some(started);
        let g = decide(&revoked, doctor, last_second, grace).unwrap();
        assert_eq!((g.role, g.can_control), (Role::Doctor, false), "revoked");

        let mut cancelled = b.clone();
        cancelled.status = BookingStatus::Cancelled;
        assert!(matches!(
            decide(&cancelled, doctor, started, grace),
            Err(ApiError::Conflict { .. })
        ));
    }
}
