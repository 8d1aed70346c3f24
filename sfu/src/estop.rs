//! The e-stop latch of one room, as the SFU sees it.
//!
//! Any doctor may latch the e-stop (observers and the robot may not); only the lease holder may
//! clear it (see [safety ordering](crate#safety-ordering) and `docs/architecture.md`, "Safety in
//! depth"). While latched, the control gate lets only "hold still"
//! frames through. The robot has its own latch, which also trips from its physical button; it
//! reports it in telemetry and [`Estop::robot_reported`] mirrors it, so the room shows latched
//! whenever either side is.
//!
//! Every method returns whether the room-visible state changed, so the shell knows when to send
//! a stop frame and the e-stop command to the robot and `ServerEvent::Estop` to everyone.
//!
//! Not here: sending anything, who holds the lease ([`crate::lease`]), or frame filtering
//! ([`crate::control_gate`]).

use bedside_proto::join_token::Role;

use crate::SessionId;

/// The e-stop state of one room. See the module docs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Estop {
    /// Latched through the SFU, by this doctor (the first one, if several pressed it).
    latched_by: Option<SessionId>,
    /// The robot's last telemetry said it is latched.
    robot_latched: bool,
}

impl Estop {
    /// Unlatched: a room starts without an e-stop, whatever the robot reports next.
    pub fn new() -> Self {
        Self::default()
    }

    /// Does the room show the e-stop as latched (by a doctor or by the robot itself).
    pub fn is_latched(&self) -> bool {
        self.latched_by.is_some() || self.robot_latched
    }

    /// The doctor who latched it; `None` while latched means the robot latched itself.
    pub fn latched_by(&self) -> Option<SessionId> {
        self.latched_by
    }

    /// A participant pressed e-stop. `Ok(true)`: newly latched by `by`; the shell sends a stop
    /// frame and the e-stop to the robot and tells everyone. `Ok(false)`: it already was.
    ///
    /// A doctor's latch is recorded even if the robot already reported itself latched, so that
    /// the robot releasing its own button does not undo a doctor's e-stop.
    pub fn latch(&mut self, by: SessionId, role: Role) -> Result<bool, &'static str> {
        if role != Role::Doctor {
            return Err("forbidden");
        }
        if self.latched_by.is_some() {
            return Ok(false);
        }
        self.latched_by = Some(by);
        Ok(true)
    }

    /// The lease holder cleared the e-stop. `Ok(true)`: it was latched and now is not; the shell
    /// sends the clear to the robot and tells everyone. `Err("not_holder")` for anyone else.
    ///
    /// The robot's reported latch is cleared too, on the expectation that the robot obeys the
    /// clear; if it stays latched (say its physical button is still pressed) its next telemetry
    /// latches the room again. Any error this leaves is on the latched, safe side.
    pub fn clear(&mut self, is_holder: bool) -> Result<bool, &'static str> {
        if !is_holder {
            return Err("not_holder");
        }
        let was = self.is_latched();
        self.latched_by = None;
        self.robot_latched = false;
        Ok(was)
    }

    /// The robot's telemetry reported its latch. Returns whether the room-visible state changed.
    /// A report of "not latched" never clears a doctor's latch: the report may predate it.
    pub fn robot_reported(&mut self, latched: bool) -> bool {
        let was = self.is_latched();
        self.robot_latched = latched;
        was != self.is_latched()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SessionId = SessionId(1);
    const B: SessionId = SessionId(2);

    #[test]
    fn starts_clear() {
        let e = Estop::new();
        assert!(!e.is_latched());
        assert_eq!(e.latched_by(), None);
    }

    #[test]
    fn any_doctor_latches_others_are_forbidden() {
        let mut e = Estop::new();
        assert_eq!(e.latch(A, Role::Observer), Err("forbidden"));
        assert_eq!(e.latch(A, Role::Robot), Err("forbidden"));
        assert!(!e.is_latched());
        assert_eq!(e.latch(A, Role::Doctor), Ok(true));
        assert!(e.is_latched());
        assert_eq!(e.latched_by(), Some(A));
    }

    #[test]
    fn latching_again_is_not_a_change() {
        let mut e = Estop::new();
        assert_eq!(e.latch(A, Role::Doctor), Ok(true));
        assert_eq!(e.latch(A, Role::Doctor), Ok(false));
        assert_eq!(e.latch(B, Role::Doctor), Ok(false));
        assert_eq!(e.latched_by(), Some(A));
    }

    #[test]
    fn only_the_holder_clears() {
        let mut e = Estop::new();
        e.latch(A, Role::Doctor).ok();
        assert_eq!(e.clear(false), Err("not_holder"));
        assert!(e.is_latched());
        assert_eq!(e.clear(true), Ok(true));
        assert!(!e.is_latched());
        assert_eq!(e.latched_by(), None);
        assert_eq!(e.clear(true), Ok(false));
    }

    #[test]
    fn robot_latch_shows_in_the_room() {
        let mut e = Estop::new();
        assert!(e.robot_reported(true));
        assert!(e.is_latched());
        assert_eq!(e.latched_by(), None);
        assert!(!e.robot_reported(true));
        assert!(e.robot_reported(false));
        assert!(!e.is_latched());
        assert!(!e.robot_reported(false));
    }

    #[test]
    fn a_robot_report_does_not_clear_a_doctors_latch() {
        let mut e = Estop::new();
        e.latch(A, Role::Doctor).ok();
        assert!(!e.robot_reported(false));
        assert!(e.is_latched());
        assert!(!e.robot_reported(true));
        assert!(!e.robot_reported(false));
        assert!(e.is_latched());
    }

    #[test]
    fn a_doctor_latch_outlives_the_robots_own() {
        let mut e = Estop::new();
        e.robot_reported(true);
        // Already latched on screen, but the doctor's latch is news for the robot.
        assert_eq!(e.latch(A, Role::Doctor), Ok(true));
        assert!(!e.robot_reported(false));
        assert!(e.is_latched());
    }

    #[test]
    fn clear_covers_the_robots_latch_until_it_reports_again() {
        let mut e = Estop::new();
        e.robot_reported(true);
        assert_eq!(e.clear(false), Err("not_holder"));
        assert_eq!(e.clear(true), Ok(true));
        assert!(!e.is_latched());
        // The robot is still latched (its button is pressed): the room latches again.
        assert!(e.robot_reported(true));
        assert!(e.is_latched());
    }
}
