//! When a room's live status goes to the API: on a change, at most once per [`MIN_GAP`], and
//! again every refresh period while nothing changes, so that the API can tell a quiet room from
//! a dead node (it forgets statuses that stop being refreshed).
//!
//! [`StatusPacer`] is one room's clock for this, fed the time and the room's current status
//! ([`Room::status`](crate::room::Room::status)); it looks at the room at most once per
//! [`MIN_GAP`], so a 500-viewer room costs one status a second however busy it is. Link
//! statistics change every stats interval and are not a change by themselves: they ride along
//! with the next change or refresh.
//!
//! Not here: building the status (the room), sending it (the worker hands it to the node
//! channel), or the last word on a room that empties (the switchboard sends that at once).

use std::time::{Duration, Instant};

use bedside_proto::node::RoomStatus;

/// A room is looked at, and its status sent, at most this often.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// One room's pacing. See the module docs.
#[derive(Debug, Clone)]
pub struct StatusPacer {
    refresh: Duration,
    /// When the room was last looked at.
    checked: Option<Instant>,
    /// When a status last went out, and what it said (without link statistics).
    sent: Option<(Instant, RoomStatus)>,
}

impl StatusPacer {
    /// A pacer that sends at least every `refresh` (never more often than [`MIN_GAP`]).
    pub fn new(refresh: Duration) -> Self {
        StatusPacer {
            refresh: refresh.max(MIN_GAP),
            checked: None,
            sent: None,
        }
    }

    /// When [`poll`](Self::poll) next wants to look at the room.
    pub fn next_check(&self) -> Option<Instant> {
        self.checked.map(|c| c + MIN_GAP)
    }

    /// The status to send now, if any: the first one, a changed one, or a refresh. `status` is
    /// called only when the room is due a look.
    pub fn poll(
        &mut self,
        now: Instant,
        status: impl FnOnce() -> RoomStatus,
    ) -> Option<RoomStatus> {
        if self.next_check().is_some_and(|due| now < due) {
            return None;
        }
        self.checked = Some(now);
        let current = status();
        let key = without_link_stats(&current);
        let send = match &self.sent {
            None => true,
            Some((at, last)) => *last != key || now.saturating_duration_since(*at) >= self.refresh,
        };
        if !send {
            return None;
        }
        self.sent = Some((now, key));
        Some(current)
    }
}

/// What counts as a change: everything but the numbers that move on every stats interval.
fn without_link_stats(s: &RoomStatus) -> RoomStatus {
    let mut key = s.clone();
    if let Some(link) = key.link.as_mut() {
        link.loss = None;
        link.rtt_ms = None;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedside_proto::node::{EstopStatus, LinkStatus};

    fn status(online: bool, loss: f32) -> RoomStatus {
        RoomStatus {
            room: "r".into(),
            node: "n".into(),
            closed: false,
            refresh_secs: 10,
            robot_online: online,
            battery: None,
            link: Some(LinkStatus {
                loss: Some(loss),
                ..LinkStatus::default()
            }),
            estop: EstopStatus::default(),
            lease: None,
            participants: Vec::new(),
        }
    }

    #[test]
    fn first_status_goes_at_once_then_changes_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut p = StatusPacer::new(Duration::from_secs(10));
        assert!(p.poll(t0, || status(false, 0.0)).is_some(), "first");
        let mut looked = false;
        let soon = p.poll(t0 + Duration::from_millis(300), || {
            looked = true;
            status(true, 0.0)
        });
        assert!(
            soon.is_none() && !looked,
            "within the gap the room is not even looked at"
        );
        assert_eq!(p.next_check(), Some(t0 + MIN_GAP));
        let sent = p.poll(t0 + MIN_GAP, || status(true, 0.0));
        assert!(
            sent.is_some_and(|s| s.robot_online),
            "the change, one gap later"
        );
        assert!(
            p.poll(t0 + MIN_GAP * 2, || status(true, 0.0)).is_none(),
            "no change"
        );
    }

    #[test]
    fn link_statistics_alone_wait_for_the_refresh() {
        let t0 = Instant::now();
        let refresh = Duration::from_secs(5);
        let mut p = StatusPacer::new(refresh);
        assert!(p.poll(t0, || status(true, 0.01)).is_some());
        for s in 1..5 {
            let at = t0 + Duration::from_secs(s);
            assert!(
                p.poll(at, || status(true, s as f32 / 10.0)).is_none(),
                "{s}s"
            );
        }
        let refreshed = p.poll(t0 + refresh, || status(true, 0.5)).expect("refresh");
        assert_eq!(
            refreshed.link.and_then(|l| l.loss),
            Some(0.5),
            "fresh numbers"
        );
    }

    #[test]
    fn a_refresh_goes_out_even_when_nothing_changed() {
        let t0 = Instant::now();
        let mut p = StatusPacer::new(Duration::from_secs(3));
        p.poll(t0, || status(true, 0.0)).expect("first");
        let sent: Vec<u64> = (1..=9)
            .filter(|s| {
                p.poll(t0 + Duration::from_secs(*s), || status(true, 0.0))
                    .is_some()
            })
            .collect();
        assert_eq!(sent, vec![3, 6, 9]);
    }
}
