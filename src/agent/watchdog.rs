//! The robot-side watchdog: turns received control frames into drive commands, safely.
//!
//! The last line of defence, running on the robot itself, so it must hold even if everything
//! upstream misbehaves: the robot stops when no valid frame arrived for `deadman` (default
//! 300 ms); frames with an epoch older than the newest seen are ignored (a previous lease holder's
//! late frames); within an epoch only newer sequence numbers count; a stop frame stops at once;
//! an e-stop latches and holds the robot still until the lease holder clears it; a lease change
//! announced on the reliable `events` channel stops it too (the stop frame travels on the
//! unreliable one and may be lost). The watchdog outlives a reconnection: its e-stop latch is
//! kept until the room says otherwise, and it starts still.
//!
//! Sans-IO: fed frames, e-stop changes and the time; returns [`Drive`] commands. The agent loop
//! (`agent/mod.rs`) owns the sockets and the sink.

use std::time::{Duration, Instant};

use bedside_proto::{ControlFrame, FrameKind};
use serde::Serialize;

/// Why the robot is doing what it does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriveReason {
    Frame,
    Stop,
    Deadman,
    Estop,
    /// The agent's connection to the server ended (decided by the agent, not the watchdog):
    /// told apart from `deadman` so that a motor log says why, and so that a test can tell
    /// this stop from the watchdog's.
    Disconnected,
}

/// One command for the motor controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Drive {
    pub linear_x: i16,
    pub linear_y: i16,
    pub angular_z: i16,
    pub epoch: u32,
    pub reason: DriveReason,
}

impl Drive {
    fn still(epoch: u32, reason: DriveReason) -> Self {
        Drive {
            linear_x: 0,
            linear_y: 0,
            angular_z: 0,
            epoch,
            reason,
        }
    }

    pub fn is_still(&self) -> bool {
        self.linear_x == 0 && self.linear_y == 0 && self.angular_z == 0
    }
}

/// Why a frame was not obeyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    Malformed,
    OldEpoch,
    Stale,
    Estop,
}

pub struct Watchdog {
    deadman: Duration,
    epoch: u32,
    last_seq: Option<u32>,
    last_valid: Option<Instant>,
    estop: bool,
    current: Drive,
}

impl Watchdog {
    pub fn new(deadman: Duration) -> Self {
        Watchdog {
            deadman,
            epoch: 0,
            last_seq: None,
            last_valid: None,
            estop: false,
            current: Drive::still(0, DriveReason::Stop),
        }
    }

    pub fn current(&self) -> Drive {
        self.current
    }

    pub fn estop_latched(&self) -> bool {
        self.estop
    }

    /// Bytes from the `control` channel. Returns the command to send to the motors, if any.
    pub fn on_frame(&mut self, bytes: &[u8], now: Instant) -> Result<Option<Drive>, Ignored> {
        let f = ControlFrame::decode(bytes).map_err(|_| Ignored::Malformed)?;
        if f.epoch < self.epoch {
            return Err(Ignored::OldEpoch);
        }
        if f.epoch > self.epoch {
            self.epoch = f.epoch;
            self.last_seq = None;
        }
        if f.kind == FrameKind::Stop {
            // The SFU's own stop (lease change or e-stop): obey at once, whatever its seq.
            self.last_valid = None;
            return Ok(self.set(Drive::still(f.epoch, DriveReason::Stop)));
        }
        if self.last_seq.is_some_and(|s| f.seq <= s) {
            return Err(Ignored::Stale);
        }
        self.last_seq = Some(f.seq);
        if self.estop {
            return Err(Ignored::Estop);
        }
        self.last_valid = Some(now);
        let d = Drive {
            linear_x: f.linear_x,
            linear_y: f.linear_y,
            angular_z: f.angular_z,
            epoch: f.epoch,
            reason: DriveReason::Frame,
        };
        // Every obeyed frame goes to the motors, changed or not: a motor controller with its
        // own timeout (ROS `cmd_vel_timeout`) needs the steady stream to keep moving.
        self.current = d;
        Ok(Some(d))
    }

    /// The room announced a lease change (or told us the lease on joining). A newer epoch
    /// stops the robot: the old driver is gone even if its stop frame was lost.
    pub fn on_lease(&mut self, epoch: u32) -> Option<Drive> {
        if epoch <= self.epoch {
            return None;
        }
        self.epoch = epoch;
        self.last_seq = None;
        self.last_valid = None;
        self.set(Drive::still(epoch, DriveReason::Stop))
    }

    /// The connection to the server was lost and made again: start still, in a room whose
    /// epochs may have started over (a restarted server), keeping the e-stop latch until the
    /// room tells us its state.
    pub fn reconnected(&mut self) -> Drive {
        self.epoch = 0;
        self.last_seq = None;
        self.last_valid = None;
        let reason = if self.estop {
            DriveReason::Estop
        } else {
            DriveReason::Stop
        };
        self.current = Drive::still(0, reason);
        self.current
    }

    /// The connection to the server ended: the driver is lost with it, so a moving robot stops
    /// now rather than at the deadman (or the next reconnect). `None` if it was already still.
    pub fn disconnected(&mut self) -> Option<Drive> {
        if self.current.is_still() {
            return None;
        }
        self.last_valid = None;
        self.set(Drive::still(self.epoch, DriveReason::Disconnected))
    }

    /// The room's e-stop state changed.
    pub fn on_estop(&mut self, latched: bool) -> Option<Drive> {
        self.estop = latched;
        if latched {
            self.last_valid = None;
            return self.set(Drive::still(self.epoch, DriveReason::Estop));
        }
        None
    }

    /// Time passed: stop if the driver went quiet.
    pub fn poll(&mut self, now: Instant) -> Option<Drive> {
        let last = self.last_valid?;
        if now.saturating_duration_since(last) >= self.deadman {
            self.last_valid = None;
            return self.set(Drive::still(self.epoch, DriveReason::Deadman));
        }
        None
    }

    /// When [`poll`](Self::poll) may next act.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.last_valid.map(|t| t + self.deadman)
    }

    fn set(&mut self, d: Drive) -> Option<Drive> {
        let changed = d != self.current;
        self.current = d;
        changed.then_some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(epoch: u32, seq: u32, x: i16) -> Vec<u8> {
        let mut f = ControlFrame::drive(seq, 0, x, 0, 0);
        f.epoch = epoch;
        f.encode().to_vec()
    }

    #[test]
    fn drives_then_stops_when_the_driver_goes_quiet() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_millis(300));
        let d = w.on_frame(&drive(1, 1, 500), t0).unwrap().unwrap();
        assert_eq!((d.linear_x, d.reason), (500, DriveReason::Frame));
        assert_eq!(w.poll(t0 + Duration::from_millis(299)), None);
        let d = w.poll(t0 + Duration::from_millis(300)).unwrap();
        assert!(d.is_still());
        assert_eq!(d.reason, DriveReason::Deadman);
        // Already stopped: nothing more to say.
        assert_eq!(w.poll(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn old_epochs_and_stale_sequence_numbers_are_ignored() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_millis(300));
        w.on_frame(&drive(2, 10, 100), t0).unwrap();
        assert_eq!(w.on_frame(&drive(1, 99, 900), t0), Err(Ignored::OldEpoch));
        assert_eq!(w.on_frame(&drive(2, 10, 900), t0), Err(Ignored::Stale));
        assert_eq!(w.on_frame(&drive(2, 9, 900), t0), Err(Ignored::Stale));
        // A new epoch starts a new sequence space.
        assert!(w.on_frame(&drive(3, 1, 200), t0).unwrap().is_some());
        assert_eq!(w.on_frame(b"short", t0), Err(Ignored::Malformed));
    }

    #[test]
    fn stop_frame_stops_at_once() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_millis(300));
        w.on_frame(&drive(1, 1, 100), t0).unwrap();
        let stop = ControlFrame::stop(2, 1, 0).encode();
        let d = w.on_frame(&stop, t0).unwrap().unwrap();
        assert_eq!(
            (d.is_still(), d.reason, d.epoch),
            (true, DriveReason::Stop, 2)
        );
        assert_eq!(w.on_frame(&drive(1, 2, 100), t0), Err(Ignored::OldEpoch));
    }

    #[test]
    fn estop_latches_until_cleared() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_millis(300));
        w.on_frame(&drive(1, 1, 100), t0).unwrap();
        assert_eq!(w.on_estop(true).unwrap().reason, DriveReason::Estop);
        assert_eq!(w.on_frame(&drive(1, 2, 100), t0), Err(Ignored::Estop));
        assert!(w.current().is_still());
        assert_eq!(w.on_estop(false), None);
        assert!(w.on_frame(&drive(1, 3, 100), t0).unwrap().is_some());
    }

    #[test]
    fn a_lease_event_stops_the_robot_when_the_stop_frame_was_lost() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_millis(300));
        w.on_frame(&drive(1, 1, 100), t0).unwrap();
        let d = w.on_lease(2).expect("stopped");
        assert_eq!((d.is_still(), d.epoch), (true, 2));
        assert_eq!(w.on_frame(&drive(1, 2, 100), t0), Err(Ignored::OldEpoch));
        // The same epoch again (the new holder's frames came first) changes nothing.
        assert!(w.on_frame(&drive(3, 1, 100), t0).unwrap().is_some());
        assert_eq!(w.on_lease(3), None);
        assert_eq!(w.current().linear_x, 100);
    }

    #[test]
    fn a_lost_connection_stops_a_moving_robot_with_its_own_reason() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_secs(60));
        w.on_frame(&drive(4, 1, 100), t0).unwrap();
        let d = w.disconnected().expect("stopped");
        assert_eq!(
            (d.is_still(), d.reason, d.epoch),
            (true, DriveReason::Disconnected, 4)
        );
        assert_eq!(w.current(), d);
        // The deadman has nothing left to stop, and a still robot is not told again.
        assert_eq!(w.poll(t0 + Duration::from_secs(61)), None);
        assert_eq!(w.disconnected(), None);
    }

    #[test]
    fn a_reconnection_keeps_the_latch_and_starts_still() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_millis(300));
        w.on_frame(&drive(5, 1, 100), t0).unwrap();
        w.on_estop(true);
        let d = w.reconnected();
        assert!(d.is_still());
        assert!(w.estop_latched(), "the latch survives the reconnection");
        // A restarted server's epochs begin again at 1: obeyed once the latch is cleared.
        assert_eq!(w.on_frame(&drive(1, 1, 100), t0), Err(Ignored::Estop));
        w.on_estop(false);
        assert!(w.on_frame(&drive(1, 2, 100), t0).unwrap().is_some());
    }
}
