//! The channel between the API and its media nodes: what the API tells them (revocations, lease
//! revokes, latched e-stops, sessions to end) and what they report back (room events for the
//! audit log, and each room's live [`RoomStatus`]).
//!
//! One channel, built once, so that scale-out extends it (heartbeats, room placement) instead of
//! adding another. In one process (`bedside serve`) the messages go through memory; in a cluster
//! a media node (`bedside sfu`) holds a long-lived HTTP stream from the API
//! (`GET /internal/node/stream`, one JSON [`NodeCommand`] per line, a [`NodeCommand::Snapshot`]
//! first) and posts [`NodeReport`]s back (`POST /internal/node/reports`), both authenticated with
//! the cluster's node secret.
//!
//! Revocation is by who and what, not by token: every join mints a fresh `jti`, so a [`Deny`]
//! names a booking, a subject, a subject within a booking, or one token; and because a user may be
//! re-enabled or re-invited, a deny can be cut in time (tokens issued up to a second).
//!
//! Live status: a node sends a room's [`RoomStatus`] when it changes (at most about once a second
//! per room) and again every [`RoomStatus::refresh_secs`] while the room lives, and a last one
//! with `closed` when it empties. The API keeps the newest per room and forgets one that was not
//! refreshed for [`RoomStatus::STALE_AFTER_REFRESHES`] periods: a node that died takes its rooms
//! with it. Each status names its node, so with several nodes the newest report wins per room.
//!
//! Not here: deciding when to revoke (the API) or how a node enforces it (the SFU).

use serde::{Deserialize, Serialize};

use crate::events::Transport;
use crate::join_token::{Claims, Role};

/// API -> media node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeCommand {
    /// Everything in force, sent first on every (re)connection: it replaces what the node had.
    Snapshot {
        /// Deny entries still in force.
        denies: Vec<Deny>,
        /// Rooms whose e-stop a doctor latched and nobody cleared.
        latches: Vec<Latch>,
    },
    /// Refuse matching tokens from now on and end the matching live sessions.
    Deny {
        /// What to refuse.
        deny: Deny,
    },
    /// Take the lease away in `room` now (an administrator did). The right to take it back is
    /// withdrawn separately, by a [`Deny`] of [`DenyScope::Control`] on the booking.
    RevokeLease {
        /// The room (robot id).
        room: String,
    },
    /// End one participant's session (an administrator did), by its public session id.
    EndSession {
        /// The room (robot id).
        room: String,
        /// The public session id (`s7`), as presence shows it.
        session: String,
    },
    /// Nothing to say: the stream is alive (every few seconds).
    Ping,
}

/// Media node -> API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeReport {
    /// Something worth an audit record happened in a room (lease change, e-stop).
    RoomEvent {
        /// The room (robot id).
        room: String,
        /// The audit kind (`lease_changed`, `estop_latched`, `estop_cleared`, ...).
        kind: String,
        /// The participant's `sub`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        /// Everything else.
        #[serde(default)]
        detail: serde_json::Value,
    },
    /// A room's live state (see the module docs for when it is sent).
    RoomStatus {
        /// The state.
        status: RoomStatus,
    },
}

/// One room as its media node sees it now: who is there and what the robot says. Participants
/// appear by opaque `sub` and public session id only; the API adds names for those allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomStatus {
    /// The room (robot id).
    pub room: String,
    /// The media node holding it.
    pub node: String,
    /// The room emptied: forget it now (everything else is then empty).
    #[serde(default)]
    pub closed: bool,
    /// The node sends this room's status again within this many seconds while it lives.
    pub refresh_secs: u32,
    /// The robot publishes into the room now.
    pub robot_online: bool,
    /// The robot's last battery reading, 0.0-1.0 (its telemetry), while it is online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<f32>,
    /// The robot's link, while it is online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkStatus>,
    /// The e-stop: latched in the room (by a doctor) or at the robot.
    pub estop: EstopStatus,
    /// Who holds the control lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseHolder>,
    /// Everyone connected, the robot included, in join order.
    pub participants: Vec<ParticipantStatus>,
}

impl RoomStatus {
    /// A status not refreshed for this many of its own periods is stale: its node is gone.
    pub const STALE_AFTER_REFRESHES: u32 = 3;

    /// The last word on a room that emptied.
    pub fn closed(room: &str, node: &str, refresh_secs: u32, estop: EstopStatus) -> Self {
        RoomStatus {
            room: room.to_string(),
            node: node.to_string(),
            closed: true,
            refresh_secs,
            robot_online: false,
            battery: None,
            link: None,
            estop,
            lease: None,
            participants: Vec::new(),
        }
    }
}

/// How well the robot reaches its media node: what the node measures on the robot's session,
/// and what the robot says of its own link. Any of it may be unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LinkStatus {
    /// How the robot's packets reach the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Fraction of the robot's media packets lost on the way in (0.0-1.0), from the node's
    /// receiver reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f32>,
    /// Round trip between node and robot, milliseconds, from RTCP, when the robot's stack
    /// reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<u32>,
    /// The robot's own link quality reading, 0.0-1.0 (its telemetry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_quality: Option<f32>,
}

/// A room's e-stop state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EstopStatus {
    /// Motion is stopped (the room's latch or the robot's own).
    pub latched: bool,
    /// The robot's own e-stop is pressed (released only at the robot).
    #[serde(default)]
    pub robot: bool,
}

/// The lease holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// Its `sub`.
    pub sub: String,
    /// Its public session id.
    pub session: String,
    /// Its token's role.
    pub role: Role,
}

/// One connected participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantStatus {
    /// Public session id (`s7`), as presence shows it and `EndSession` names it.
    pub session: String,
    /// The token's `sub`.
    pub sub: String,
    /// The token's role.
    pub role: Role,
    /// The booking its token was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<String>,
    /// How it reaches the node, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
}

/// A room's e-stop latched by a doctor, as the API keeps it across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latch {
    /// The room (robot id).
    pub room: String,
    /// The `sub` of the doctor who latched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Who a deny entry refuses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DenyTarget {
    /// One token.
    Token {
        /// Its `jti`.
        jti: String,
    },
    /// Every token of a booking (it was cancelled).
    Booking {
        /// The booking id.
        booking: String,
    },
    /// Every token of a user or robot (disabled; credential rotated).
    Subject {
        /// The `sub`.
        sub: String,
    },
    /// One participant's tokens for one booking (an invitation was removed).
    Participant {
        /// The `sub`.
        sub: String,
        /// The booking id.
        booking: String,
    },
}

/// Why access was taken away: said to the participant in an `events` error, and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The booking was cancelled.
    BookingCancelled,
    /// The participant's invitation was removed.
    InvitationRemoved,
    /// The user was disabled.
    UserDisabled,
    /// The robot's credential was rotated.
    CredentialRotated,
    /// An administrator ended the session.
    SessionEnded,
    /// An administrator took control away for this booking.
    ControlRevoked,
}

impl RevokeReason {
    /// The `events` error code a participant receives.
    pub fn code(&self) -> &'static str {
        match self {
            RevokeReason::BookingCancelled => "booking_cancelled",
            RevokeReason::InvitationRemoved => "invitation_removed",
            RevokeReason::UserDisabled => "user_disabled",
            RevokeReason::CredentialRotated => "credential_rotated",
            RevokeReason::SessionEnded => "session_ended",
            RevokeReason::ControlRevoked => "control_revoked",
        }
    }

    /// What the participant is told.
    pub fn message(&self) -> &'static str {
        match self {
            RevokeReason::BookingCancelled => "the booking was cancelled",
            RevokeReason::InvitationRemoved => "your invitation to this booking was removed",
            RevokeReason::UserDisabled => "your account was disabled",
            RevokeReason::CredentialRotated => "the robot's credential was replaced",
            RevokeReason::SessionEnded => "an administrator ended your session",
            RevokeReason::ControlRevoked => {
                "an administrator took control away; you may watch but not drive"
            }
        }
    }
}

/// What a deny entry takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyScope {
    /// The room: matching tokens are refused and matching sessions ended.
    #[default]
    Access,
    /// Only control: matching tokens join without `can_control` and matching sessions lose it
    /// (an administrator revoked the lease of a booking).
    Control,
}

/// One entry of the deny list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deny {
    /// Who is refused.
    pub target: DenyTarget,
    /// What is taken away.
    #[serde(default)]
    pub scope: DenyScope,
    /// Only tokens issued (`iat`) at or before this second; `None`: every matching token.
    /// A user disabled and enabled again gets new tokens that pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_until: Option<u64>,
    /// The entry may be forgotten after this second: no token it matches lives longer.
    pub until: u64,
    /// Why.
    pub reason: RevokeReason,
}

impl Deny {
    /// Does this entry refuse a token with these claims?
    pub fn matches(&self, c: &Claims) -> bool {
        let target = match &self.target {
            DenyTarget::Token { jti } => c.jti == *jti,
            DenyTarget::Booking { booking } => c.booking.as_deref() == Some(booking),
            DenyTarget::Subject { sub } => c.sub == *sub,
            DenyTarget::Participant { sub, booking } => {
                c.sub == *sub && c.booking.as_deref() == Some(booking)
            }
        };
        target && self.issued_until.is_none_or(|cut| c.iat <= cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join_token::Role;

    fn claims(sub: &str, booking: Option<&str>, iat: u64) -> Claims {
        let mut c = Claims::new(sub, "room", Role::Doctor, 60);
        c.booking = booking.map(str::to_string);
        c.iat = iat;
        c
    }

    fn deny(target: DenyTarget, issued_until: Option<u64>) -> Deny {
        Deny {
            target,
            scope: DenyScope::Access,
            issued_until,
            until: u64::MAX,
            reason: RevokeReason::UserDisabled,
        }
    }

    #[test]
    fn targets_match_who_they_name() {
        let c = claims("u1", Some("b1"), 100);
        let hits = [
            DenyTarget::Token { jti: c.jti.clone() },
            DenyTarget::Booking {
                booking: "b1".into(),
            },
            DenyTarget::Subject { sub: "u1".into() },
            DenyTarget::Participant {
                sub: "u1".into(),
                booking: "b1".into(),
            },
        ];
        for t in hits {
            assert!(deny(t.clone(), None).matches(&c), "{t:?}");
        }
        let misses = [
            DenyTarget::Token {
                jti: "other".into(),
            },
            DenyTarget::Booking {
                booking: "b2".into(),
            },
            DenyTarget::Subject { sub: "u2".into() },
            DenyTarget::Participant {
                sub: "u1".into(),
                booking: "b2".into(),
            },
            DenyTarget::Participant {
                sub: "u2".into(),
                booking: "b1".into(),
            },
        ];
        for t in misses {
            assert!(!deny(t.clone(), None).matches(&c), "{t:?}");
        }
        // A token without a booking is never caught by a booking's deny.
        let bare = claims("u1", None, 100);
        assert!(!deny(
            DenyTarget::Booking {
                booking: "b1".into()
            },
            None
        )
        .matches(&bare));
    }

    #[test]
    fn a_time_cut_spares_tokens_issued_after_it() {
        let d = deny(DenyTarget::Subject { sub: "u1".into() }, Some(100));
        assert!(d.matches(&claims("u1", None, 99)));
        assert!(d.matches(&claims("u1", None, 100)), "same second: refused");
        assert!(!d.matches(&claims("u1", None, 101)));
    }

    #[test]
    fn commands_round_trip_as_json_lines() {
        let cmds = vec![
            NodeCommand::Snapshot {
                denies: vec![deny(DenyTarget::Subject { sub: "u".into() }, Some(5))],
                latches: vec![Latch {
                    room: "r".into(),
                    by: Some("d".into()),
                }],
            },
            NodeCommand::RevokeLease { room: "r".into() },
            NodeCommand::Ping,
        ];
        for c in cmds {
            let line = serde_json::to_string(&c).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<NodeCommand>(&line).unwrap(), c);
        }
    }
}
