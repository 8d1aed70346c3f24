//! The e-stop of one room, as the SFU sees it: two latches with two owners.
//!
//! - **The room latch**: any doctor may press it (observers and the robot may not); only the
//!   lease holder may clear it. It belongs to the room, not to a session: it outlives the room
//!   emptying and the robot reconnecting (the switchboard keeps it per room and the API keeps it
//!   across restarts), so it may be latched by a doctor who is no longer here ([`Latcher`]).
//! - **The robot's own latch**: the button on the robot or on the robot page. The robot reports
//!   it in telemetry and only the robot clears it. A doctor's `estop_clear` never touches it:
//!   the e-stop pressed at the bedside belongs to the bedside.
//!
//! The room shows latched while either is, and the control gate then lets only "hold still"
//! frames through. Every method returns whether the room-visible state changed, so the room
//! knows when to stop the robot and tell everyone.
//!
//! Not here: sending anything, who holds the lease ([`crate::lease`]), or frame filtering
//! ([`crate::control_gate`]). The safety rules themselves are in `docs/architecture.md`
//! ("Safety in depth").

use bedside_proto::join_token::Role;

use crate::SessionId;

/// Who latched the room's e-stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latcher {
    /// The doctor's session, if it latched here and now (not restored from before).
    pub session: Option<SessionId>,
    /// The doctor's token `sub`, if known.
    pub sub: Option<String>,
}

/// Why a clear was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearRefused {
    /// Only the lease holder clears the room latch.
    NotHolder,
}

impl ClearRefused {
    /// The `events` error code.
    pub fn code(self) -> &'static str {
        match self {
            ClearRefused::NotHolder => "not_holder",
        }
    }
}

/// The e-stop state of one room. See the module docs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Estop {
    room: Option<Latcher>,
    robot: bool,
}

impl Estop {
    /// Nothing latched.
    pub fn new() -> Self {
        Self::default()
    }

    /// A room whose latch was set before it (last) emptied or before a restart.
    pub fn restored(room: Option<Latcher>) -> Self {
        Estop { room, robot: false }
    }

    /// Set the room latch from the API's record (a restart, or a latch made on another node).
    /// True if it was not latched before. A record never clears: only the holder does.
    pub fn restore_room_latch(&mut self, latch: Latcher) -> bool {
        if self.room.is_some() {
            return false;
        }
        self.room = Some(latch);
        true
    }

    /// Does the room show the e-stop as latched (by a doctor or by the robot itself).
    pub fn is_latched(&self) -> bool {
        self.room.is_some() || self.robot
    }

    /// Who latched the room latch, if it is latched.
    pub fn room_latch(&self) -> Option<&Latcher> {
        self.room.as_ref()
    }

    /// The robot's own latch is pressed.
    pub fn robot_latched(&self) -> bool {
        self.robot
    }

    /// The session that latched the room latch, if it latched here.
    pub fn latched_by(&self) -> Option<SessionId> {
        self.room.as_ref().and_then(|l| l.session)
    }

    /// A participant pressed e-stop. `Ok(true)`: the room latch is newly latched, by `by`.
    /// `Ok(false)`: it already was. Recorded even if the robot's own latch is pressed, so that
    /// releasing the robot's button does not undo a doctor's e-stop.
    pub fn latch(&mut self, by: SessionId, sub: &str, role: Role) -> Result<bool, &'static str> {
        if role != Role::Doctor {
            return Err("forbidden");
        }
        if self.room.is_some() {
            return Ok(false);
        }
        self.room = Some(Latcher {
            session: Some(by),
            sub: Some(sub.to_string()),
        });
        Ok(true)
    }

    /// The lease holder cleared the room latch. `Ok(true)`: it was latched and now is not. The
    /// robot's own latch stays as it is, so the room may still show latched.
    pub fn clear(&mut self, is_holder: bool) -> Result<bool, ClearRefused> {
        if !is_holder {
            return Err(ClearRefused::NotHolder);
        }
        Ok(self.room.take().is_some())
    }

    /// The robot's telemetry reported its own latch. Returns whether the robot's latch changed.
    /// It never clears the room latch: the report may predate a doctor's press.
    pub fn robot_reported(&mut self, latched: bool) -> bool {
        std::mem::replace(&mut self.robot, latched) != latched
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
        assert_eq!(e.latch(A, "a", Role::Observer), Err("forbidden"));
        assert_eq!(e.latch(A, "a", Role::Robot), Err("forbidden"));
        assert!(!e.is_latched());
        assert_eq!(e.latch(A, "a", Role::Doctor), Ok(true));
        assert!(e.is_latched());
        assert_eq!(e.latched_by(), Some(A));
        assert_eq!(e.room_latch().unwrap().sub.as_deref(), Some("a"));
    }

    #[test]
    fn latching_again_is_not_a_change() {
        let mut e = Estop::new();
        assert_eq!(e.latch(A, "a", Role::Doctor), Ok(true));
        assert_eq!(e.latch(A, "a", Role::Doctor), Ok(false));
        assert_eq!(e.latch(B, "b", Role::Doctor), Ok(false));
        assert_eq!(e.latched_by(), Some(A));
    }

    #[test]
    fn only_the_holder_clears() {
        let mut e = Estop::new();
        e.latch(A, "a", Role::Doctor).ok();
        assert_eq!(e.clear(false), Err(ClearRefused::NotHolder));
        assert!(e.is_latched());
        assert_eq!(e.clear(true), Ok(true));
        assert!(!e.is_latched());
        assert_eq!(e.latched_by(), None);
        assert_eq!(e.clear(true), Ok(false));
    }

    #[test]
    fn the_robots_latch_shows_in_the_room_and_only_the_robot_clears_it() {
        let mut e = Estop::new();
        assert!(e.robot_reported(true));
        assert!(e.is_latched());
        assert_eq!(e.latched_by(), None);
        assert!(!e.robot_reported(true));
        // The holder's clear does not reach the robot's own latch.
        assert_eq!(e.clear(true), Ok(false));
        assert!(e.is_latched() && e.robot_latched());
        assert!(e.robot_reported(false));
        assert!(!e.is_latched());
    }

    #[test]
    fn a_robot_report_does_not_clear_a_doctors_latch() {
        let mut e = Estop::new();
        e.latch(A, "a", Role::Doctor).ok();
        assert!(!e.robot_reported(false));
        assert!(e.is_latched());
        assert!(e.robot_reported(true));
        assert!(e.robot_reported(false));
        assert!(e.is_latched());
    }

    #[test]
    fn clearing_the_room_latch_leaves_the_robots() {
        let mut e = Estop::new();
        e.robot_reported(true);
        assert_eq!(e.latch(A, "a", Role::Doctor), Ok(true));
        assert_eq!(e.clear(true), Ok(true));
        assert!(e.is_latched(), "the robot's own latch still holds");
    }

    #[test]
    fn a_restored_latch_is_latched_by_nobody_present() {
        let e = Estop::restored(Some(Latcher {
            session: None,
            sub: Some("d".into()),
        }));
        assert!(e.is_latched());
        assert_eq!(e.latched_by(), None);
    }
}
