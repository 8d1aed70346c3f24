//! [`LiveRooms`]: what the media nodes last said about each live room (`RoomStatus` reports on
//! the node channel), kept in memory, for the live status pages.
//!
//! A node reports a room when it changes (at most once a second) and refreshes it every
//! `refresh_secs` while it lives; a closed report removes it at once. An entry not refreshed
//! within [`RoomStatus::STALE_AFTER_REFRESHES`] of its own periods is dropped as stale: its node
//! stopped or lost the API, and the robot shows offline. With several media nodes each room is
//! held by one of them and each report names its node; the newest report of a room wins, and a
//! closed report from a node that no longer holds the room (the robot moved to another) changes
//! nothing. Nothing here is stored: after an API restart the view fills again within one refresh.
//!
//! Reports come from authenticated nodes but are still checked: room ids and node names must be
//! token-like and the participant list bounded, or the report is dropped (and logged).
//!
//! Not here: who may see what (`rooms`), the SFU's side (`bedside_sfu::room_status`).

use std::collections::HashMap;
use std::sync::Mutex;

use bedside_proto::node::RoomStatus;
use chrono::{DateTime, Utc};

use crate::audit::token_like;

/// Participants one room status may list; more is a broken or hostile node.
const MAX_PARTICIPANTS: usize = 10_000;

/// A room's status as last reported, and until when it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRoom {
    /// The report.
    pub status: RoomStatus,
    /// When it arrived.
    pub updated_at: DateTime<Utc>,
    /// When it is stale unless refreshed.
    pub stale_at: DateTime<Utc>,
}

/// See the module docs.
#[derive(Default)]
pub struct LiveRooms {
    rooms: Mutex<HashMap<String, LiveRoom>>,
}

impl LiveRooms {
    /// Take a node's report of one room, received at `now`. False if it was dropped as
    /// malformed.
    pub fn update(&self, status: RoomStatus, now: DateTime<Utc>) -> bool {
        if !token_like(&status.room)
            || !token_like(&status.node)
            || status.participants.len() > MAX_PARTICIPANTS
            || status
                .participants
                .iter()
                .any(|p| !token_like(&p.sub) || !token_like(&p.session))
        {
            tracing::warn!("malformed room status from a media node dropped");
            return false;
        }
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if status.closed {
            // Only the node holding the room may close it: after a move, the old node's last
            // word must not hide the room on its new node.
            if rooms
                .get(&status.room)
                .is_some_and(|r| r.status.node == status.node)
            {
                rooms.remove(&status.room);
            }
            return true;
        }
        let periods =
            i64::from(status.refresh_secs.max(1)) * i64::from(RoomStatus::STALE_AFTER_REFRESHES);
        let stale_at = now + chrono::Duration::seconds(periods);
        rooms.insert(
            status.room.clone(),
            LiveRoom {
                status,
                updated_at: now,
                stale_at,
            },
        );
        true
    }

    /// The room `id` if a node holds it now.
    pub fn get(&self, id: &str, now: DateTime<Utc>) -> Option<LiveRoom> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.get(id).filter(|r| r.stale_at > now).cloned()
    }

    /// Every room a node holds now, by room id; stale entries are forgotten on the way.
    pub fn all(&self, now: DateTime<Utc>) -> Vec<LiveRoom> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.retain(|_, r| r.stale_at > now);
        let mut list: Vec<LiveRoom> = rooms.values().cloned().collect();
        list.sort_by(|a, b| a.status.room.cmp(&b.status.room));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedside_proto::node::{EstopStatus, ParticipantStatus};
    use bedside_proto::Role;

    fn status(room: &str, node: &str, online: bool) -> RoomStatus {
        let mut s = RoomStatus::closed(room, node, 10, EstopStatus::default());
        s.closed = false;
        s.robot_online = online;
        s
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("time")
    }

    #[test]
    fn a_room_not_refreshed_for_three_periods_is_gone() {
        let live = LiveRooms::default();
        assert!(live.update(status("r1", "n1", true), t(0)));
        assert!(live.get("r1", t(29)).is_some(), "within 3 x 10 s");
        assert!(live.update(status("r1", "n1", true), t(25)), "refreshed");
        assert!(live.get("r1", t(54)).is_some());
        assert!(live.get("r1", t(55)).is_none(), "stale: its node is gone");
        assert!(live.all(t(55)).is_empty());
    }

    #[test]
    fn closed_removes_at_once_but_only_from_the_node_holding_it() {
        let live = LiveRooms::default();
        live.update(status("r1", "old", true), t(0));
        // The robot reconnected to another node; the old one then closes its empty room.
        live.update(status("r1", "new", true), t(1));
        live.update(
            RoomStatus::closed("r1", "old", 10, EstopStatus::default()),
            t(2),
        );
        let r = live.get("r1", t(3)).expect("still on the new node");
        assert_eq!(r.status.node, "new");
        live.update(
            RoomStatus::closed("r1", "new", 10, EstopStatus::default()),
            t(4),
        );
        assert!(live.get("r1", t(4)).is_none());
    }

    #[test]
    fn malformed_reports_are_dropped() {
        let live = LiveRooms::default();
        assert!(!live.update(status("a room with spaces", "n", true), t(0)));
        assert!(!live.update(status("r", &"n".repeat(65), true), t(0)));
        let mut s = status("r", "n", true);
        s.participants = vec![
            ParticipantStatus {
                session: "s1".into(),
                sub: "x".into(),
                role: Role::Doctor,
                booking: None,
                transport: None,
            };
            MAX_PARTICIPANTS + 1
        ];
        assert!(!live.update(s, t(0)));
        let mut s = status("r", "n", true);
        s.participants = vec![ParticipantStatus {
            session: "s1\n".into(),
            sub: "x".into(),
            role: Role::Doctor,
            booking: None,
            transport: None,
        }];
        assert!(!live.update(s, t(0)));
        assert!(live.all(t(0)).is_empty());
    }
}
