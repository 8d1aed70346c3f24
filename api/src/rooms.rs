//! The live status pages' domain: each robot's live state for everyone who may see robots, every
//! live room for admins, and an admin ending one participant's session.
//!
//! Who sees whom: everyone sees whether a robot is online, its battery and link, its e-stop, when
//! its current booking runs and how many of each role are in the room. The participants of that
//! booking and admins also see who they are (names, sessions, who drives); everyone else gets
//! roles and counts only, since who is at a patient's bedside is the patient's business.
//!
//! The state comes from the media nodes' room status reports ([`LiveRooms`], `live`); the
//! bookings, names and e-stop latches that survive a room from the store.
//!
//! Not here: HTTP (`http::rooms`), keeping the reports (`live`), ending the session (the media
//! node holding it, told by a `NodeCommand::EndSession`).

use std::collections::HashMap;

use bedside_proto::node::{NodeCommand, ParticipantStatus, RoomStatus};
use bedside_proto::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::AuditSink;
use crate::error::ApiError;
use crate::live::{LiveRoom, LiveRooms};
use crate::model::{Actor, Booking, BookingFilter, BookingStatus, UserRole};
use crate::node_hub::NodeHub;
use crate::store::Store;

/// The audit kind of an admin ending a participant's session.
pub const SESSION_ENDED: &str = "room.session_ended_by_admin";

/// A robot's room as the caller may see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveStatus {
    /// The robot (its room).
    pub robot: Uuid,
    /// The robot's name (admins' room list; the robot list has it already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_name: Option<String>,
    /// The robot publishes into its room now.
    pub online: bool,
    /// Battery charge 0.0-1.0, from the robot's telemetry, while online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<f32>,
    /// The robot's link, while online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LiveLink>,
    /// The e-stop.
    pub estop: LiveEstop,
    /// The booking on now (in its slot, or its join window open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<LiveBooking>,
    /// How many of each role are in the room.
    pub counts: RoleCounts,
    /// Someone holds the control lease.
    pub driving: bool,
    /// Who is in the room, in join order: for the booking's participants and admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<LiveParticipant>>,
    /// The media node holding the room (admins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// When the node last reported the room (admins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// The robot's link: what its media node measures and what it says itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveLink {
    /// `udp`, `tcp` or `relay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Fraction of its media packets lost on the way to the node, 0.0-1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f32>,
    /// Round trip to the node, ms, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<u32>,
    /// The robot's own link quality reading, 0.0-1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_quality: Option<f32>,
}

/// The e-stop.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveEstop {
    /// Motion is stopped: latched in the room (also while the room is empty) or at the robot.
    pub latched: bool,
    /// Pressed at the robot itself (released only there).
    pub at_robot: bool,
}

/// The booking on now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveBooking {
    /// Its id (its participants and admins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The caller takes part in it.
    pub yours: bool,
}

/// Head counts by role.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RoleCounts {
    pub robot: u32,
    pub doctors: u32,
    pub observers: u32,
}

/// One participant (shown to the booking's participants and admins).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveParticipant {
    /// Public session id (`s7`): what "end session" names.
    pub session: String,
    /// `robot`, `doctor` or `observer`.
    pub role: String,
    /// The user's (or robot's) id.
    pub sub: String,
    /// Display name (the robot's name for the robot); absent if unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Holds the control lease.
    pub driving: bool,
    /// `udp`, `tcp` or `relay`, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
}

/// What an ended session was.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionEnded {
    pub robot: Uuid,
    pub session: String,
    /// Whose session it was.
    pub sub: String,
    /// The media node told to end it.
    pub node: String,
}

/// What the status of one robot is drawn from.
struct Sources<'a> {
    names: &'a HashMap<String, String>,
    latched: &'a [String],
    now: DateTime<Utc>,
}

/// Every robot's live state, as `caller` may see it.
pub(crate) async fn robots(
    store: &Store,
    live: &LiveRooms,
    now: DateTime<Utc>,
    grace: chrono::Duration,
    caller: &Actor,
) -> Result<Vec<LiveStatus>, ApiError> {
    let robots = store.list_robots(false).await?;
    let rooms: HashMap<String, LiveRoom> = live
        .all(now)
        .into_iter()
        .map(|r| (r.status.room.clone(), r))
        .collect();
    let bookings = current_bookings(store, now, grace).await?;
    let latched: Vec<String> = store.latches().await?.into_iter().map(|l| l.room).collect();
    let mut names: HashMap<String, String> = robots
        .iter()
        .map(|r| (r.id.to_string(), r.name.clone()))
        .collect();
    names.extend(user_names(store, rooms.values()).await?);
    let src = Sources {
        names: &names,
        latched: &latched,
        now,
    };
    Ok(robots
        .iter()
        .map(|r| {
            let booking = bookings.get(&r.id);
            let full = caller.user.role == UserRole::Admin
                || booking.is_some_and(|b| b.participation(caller.user.id).is_some());
            status_of(
                r.id,
                rooms.get(&r.id.to_string()),
                booking,
                full,
                caller,
                &src,
            )
        })
        .collect())
}

/// Every live room with its participants (admins).
pub(crate) async fn rooms(
    store: &Store,
    live: &LiveRooms,
    now: DateTime<Utc>,
    grace: chrono::Duration,
    caller: &Actor,
) -> Result<Vec<LiveStatus>, ApiError> {
    let rooms = live.all(now);
    let bookings = current_bookings(store, now, grace).await?;
    let latched: Vec<String> = store.latches().await?.into_iter().map(|l| l.room).collect();
    // Retired robots too: a room can outlive its robot's retirement by a report or two.
    let mut names: HashMap<String, String> = store
        .list_robots(true)
        .await?
        .into_iter()
        .map(|r| (r.id.to_string(), r.name))
        .collect();
    names.extend(user_names(store, rooms.iter()).await?);
    let src = Sources {
        names: &names,
        latched: &latched,
        now,
    };
    Ok(rooms
        .iter()
        .filter_map(|r| {
            let id = Uuid::parse_str(&r.status.room).ok()?;
            let mut s = status_of(id, Some(r), bookings.get(&id), true, caller, &src);
            s.robot_name = names.get(&r.status.room).cloned();
            Some(s)
        })
        .collect())
}

/// End participant `session`'s session in `robot`'s room (an admin): the media node holding
/// the room is told, and the participant hears why before it is closed.
pub(crate) async fn end_session(
    audit: &AuditSink,
    hub: &NodeHub,
    now: DateTime<Utc>,
    actor: &Actor,
    robot: Uuid,
    session: &str,
) -> Result<SessionEnded, ApiError> {
    if !is_session_id(session) {
        return Err(ApiError::Validation(
            "a session id is `s` and a number, as the room lists it".into(),
        ));
    }
    let room = robot.to_string();
    let live = hub
        .live()
        .get(&room, now)
        .ok_or(ApiError::NotFound("live room"))?;
    let p = live
        .status
        .participants
        .iter()
        .find(|p| p.session == session)
        .ok_or(ApiError::NotFound("session"))?;
    hub.publish(NodeCommand::EndSession {
        room: room.clone(),
        session: session.to_string(),
    })
    .await?;
    tracing::info!(robot = %robot, session, "session ended by an administrator");
    audit
        .record(
            SESSION_ENDED,
            Some(actor.user.id),
            Some(robot),
            serde_json::json!({ "session": session, "sub": p.sub, "role": p.role.as_str() }),
        )
        .await?;
    Ok(SessionEnded {
        robot,
        session: session.to_string(),
        sub: p.sub.clone(),
        node: live.status.node,
    })
}

/// `s` followed by 1-19 digits (the media node's public session ids).
fn is_session_id(s: &str) -> bool {
    s.strip_prefix('s')
        .is_some_and(|n| (1..=19).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Per robot, the confirmed booking in its slot now, or else the next one whose join window has
/// opened (as the roster picks it).
async fn current_bookings(
    store: &Store,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> Result<HashMap<Uuid, Booking>, ApiError> {
    let window_end = now
        .checked_add_signed(grace)
        .ok_or_else(|| ApiError::Config("join_grace is too large".into()))?;
    let list = store
        .list_bookings(&BookingFilter {
            robot_id: None,
            participant: None,
            from: Some(now),
            to: Some(window_end + chrono::Duration::seconds(1)),
            limit: 1000,
        })
        .await?;
    let mut by_robot: HashMap<Uuid, Booking> = HashMap::new();
    for b in list
        .into_iter()
        .filter(|b| b.status == BookingStatus::Confirmed)
    {
        let earlier = by_robot
            .get(&b.robot_id)
            .is_some_and(|o| o.starts_at <= b.starts_at);
        if !earlier {
            by_robot.insert(b.robot_id, b);
        }
    }
    Ok(by_robot)
}

/// Display names of the users in these rooms, by id.
async fn user_names<'a>(
    store: &Store,
    rooms: impl Iterator<Item = &'a LiveRoom>,
) -> Result<HashMap<String, String>, ApiError> {
    let ids: Vec<Uuid> = rooms
        .flat_map(|r| r.status.participants.iter())
        .filter(|p| p.role != Role::Robot)
        .filter_map(|p| Uuid::parse_str(&p.sub).ok())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(store
        .enabled_users(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id.to_string(), u.display_name))
        .collect())
}

/// One robot's state; `full`: the caller may see who is in the room.
fn status_of(
    robot: Uuid,
    room: Option<&LiveRoom>,
    booking: Option<&Booking>,
    full: bool,
    caller: &Actor,
    src: &Sources<'_>,
) -> LiveStatus {
    let admin = caller.user.role == UserRole::Admin;
    let status: Option<&RoomStatus> = room.map(|r| &r.status);
    let online = status.is_some_and(|s| s.robot_online);
    let mut counts = RoleCounts::default();
    for p in status
        .map(|s| s.participants.as_slice())
        .unwrap_or_default()
    {
        match p.role {
            Role::Robot => counts.robot += 1,
            Role::Doctor => counts.doctors += 1,
            Role::Observer => counts.observers += 1,
        }
    }
    let holder = status.and_then(|s| s.lease.as_ref());
    let participants = full.then(|| {
        status
            .map(|s| s.participants.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|p| participant(p, holder.map(|h| h.session.as_str()), src.names))
            .collect()
    });
    let room_latched = src.latched.contains(&robot.to_string());
    LiveStatus {
        robot,
        robot_name: None,
        online,
        battery: status.filter(|_| online).and_then(|s| s.battery),
        link: status
            .filter(|_| online)
            .and_then(|s| s.link)
            .map(|l| LiveLink {
                transport: l.transport.map(|t| t.as_str().to_string()),
                loss: l.loss,
                rtt_ms: l.rtt_ms,
                reported_quality: l.reported_quality,
            }),
        estop: LiveEstop {
            latched: room_latched || status.is_some_and(|s| s.estop.latched),
            at_robot: status.is_some_and(|s| s.estop.robot),
        },
        booking: booking.map(|b| {
            let yours = b.participation(caller.user.id).is_some();
            LiveBooking {
                id: (yours || admin).then_some(b.id),
                starts_at: b.starts_at,
                ends_at: b.ends_at,
                yours,
            }
        }),
        counts,
        driving: holder.is_some(),
        participants,
        node: room.filter(|_| admin).map(|r| r.status.node.clone()),
        updated_at: room.filter(|_| admin).map(|r| r.updated_at.min(src.now)),
    }
}

fn participant(
    p: &ParticipantStatus,
    holder: Option<&str>,
    names: &HashMap<String, String>,
) -> LiveParticipant {
    LiveParticipant {
        session: p.session.clone(),
        role: p.role.as_str().to_string(),
        sub: p.sub.clone(),
        name: names.get(&p.sub).cloned(),
        driving: holder == Some(p.session.as_str()),
        transport: p.transport.map(|t| t.as_str().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_s_and_digits() {
        for ok in ["s1", "s42", "s1234567890123456789"] {
            assert!(is_session_id(ok), "{ok}");
        }
        for bad in [
            "",
            "s",
            "7",
            "s-1",
            "s1a",
            "S1",
            "s12345678901234567890",
            "s1\n",
        ] {
            assert!(!is_session_id(bad), "{bad:?}");
        }
    }
}
