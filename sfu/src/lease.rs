//! The control lease of one room: who may drive the robot right now.
//!
//! [`Lease`] is a sans-IO state machine. The room shell feeds it [`LeaseInput`]s (members
//! joining and leaving, lease requests from the `events` channel, clock ticks, admin revokes) and
//! acts on the [`LeaseOutput`] it returns. One holder or none; the epoch goes up by exactly one on
//! every change, because the robot ignores frames from an older epoch and the control gate stamps
//! the current one into every forwarded frame.
//!
//! On [`LeaseOutput::Changed`] the shell must send a stop frame to the robot *before* telling
//! anyone about the change ([safety ordering](crate#safety-ordering)): the old holder's last
//! command must not keep the robot moving while the new holder is still finding the joystick.
//!
//! Not here: sockets, clocks (time comes in as unix ms), the wire format of events, frame
//! filtering ([`crate::control_gate`]) or the e-stop ([`crate::estop`]).

use std::collections::BTreeMap;

use bedside_proto::events::LeaseReason;
use bedside_proto::join_token::Role;

use crate::SessionId;

/// What the lease needs to know about one participant, taken from its join token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The session, as the room names it.
    pub id: SessionId,
    /// Only doctors may hold the lease.
    pub role: Role,
    /// The booking's doctor: may take a free lease.
    pub can_control: bool,
    /// The token's `exp` in unix ms; holding the lease ends here.
    pub expires_at_ms: u64,
}

/// Everything that can happen to a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseInput {
    /// A participant joined the room; nobody gets the lease by joining.
    Join(Member),
    /// A participant left; if it held the lease, the lease is freed (`disconnected`).
    Leave {
        /// Who left.
        id: SessionId,
    },
    /// Take the lease if free, else ask the holder for it.
    Request {
        /// The asking doctor.
        from: SessionId,
    },
    /// Holder: give the lease to someone who asked.
    Grant {
        /// Must be the holder.
        by: SessionId,
        /// Must have a pending request.
        to: SessionId,
    },
    /// Holder: refuse someone who asked.
    Deny {
        /// Must be the holder.
        by: SessionId,
        /// Must have a pending request.
        to: SessionId,
    },
    /// Holder: give the lease to another doctor, asked or not.
    Handoff {
        /// Must be the holder.
        by: SessionId,
        /// Any doctor in the room, `can_control` or not: the holder vouches for them.
        to: SessionId,
    },
    /// Holder: give the lease up.
    Release {
        /// Must be the holder.
        by: SessionId,
    },
    /// The clock moved; the shell sends one at [`Lease::next_deadline_ms`] and may send more.
    Tick {
        /// Unix ms, the unit of token expiry; a clock stepping back is ignored.
        now_ms: u64,
    },
    /// An administrator takes the lease away.
    AdminRevoke,
    /// This member may no longer take control (its booking's control was revoked): it loses
    /// the lease if it holds it.
    Withdraw {
        /// The member.
        id: SessionId,
    },
    /// The holder went silent: nobody drives until it comes back (same epoch) or `until_ms`
    /// passes (the lease ends, `disconnected`).
    Suspend {
        /// The member.
        id: SessionId,
        /// The end of the grace period, unix ms.
        until_ms: u64,
    },
    /// The suspended holder is heard from again.
    Resume {
        /// The member.
        id: SessionId,
    },
}

/// What the shell must do after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutput {
    /// The holder changed: stop frame to the robot first, then `ServerEvent::Lease` to everyone.
    Changed {
        /// The new holder, or `None`: the lease is free.
        holder: Option<SessionId>,
        /// The new epoch, one more than before.
        epoch: u32,
        /// Why, as participants are told.
        reason: LeaseReason,
    },
    /// Tell the holder (and the requester) that `from` asks for control.
    Requested {
        /// The asking doctor.
        from: SessionId,
        /// The current holder, who must answer.
        holder: SessionId,
    },
    /// Tell `to` that the holder refused its request.
    Denied {
        /// The refused requester.
        to: SessionId,
    },
    /// The holder went silent: stop the robot (same epoch) and tell everyone.
    Suspended {
        /// The suspended holder.
        holder: SessionId,
        /// The unchanged epoch.
        epoch: u32,
    },
    /// The suspended holder is back: tell everyone it drives again.
    Resumed {
        /// The holder.
        holder: SessionId,
        /// The unchanged epoch.
        epoch: u32,
    },
    /// Tell `to` (as `ServerEvent::Error`) that what it sent was refused.
    Rejected {
        /// Whoever sent the refused input.
        to: SessionId,
        /// Stable, machine-readable: `forbidden`, `not_holder`, `no_holder`, `not_in_room`,
        /// `no_request`, `already_holder`, `expired`.
        code: &'static str,
        /// For people.
        message: &'static str,
    },
}

/// The lease of one room. See the module docs.
#[derive(Debug, Default)]
pub struct Lease {
    members: BTreeMap<SessionId, Member>,
    holder: Option<SessionId>,
    epoch: u32,
    /// Requests to the current holder, oldest first; never contains the holder.
    pending: Vec<SessionId>,
    /// Latest time seen in a tick, so a member whose token ran out cannot take the lease again
    /// between ticks (it would be granted, then expired at the next tick: two needless stops).
    now_ms: u64,
    /// The holder is suspended until this unix ms (see [`LeaseInput::Suspend`]).
    suspended_until: Option<u64>,
}

fn rejected(to: SessionId, code: &'static str, message: &'static str) -> Option<LeaseOutput> {
    Some(LeaseOutput::Rejected { to, code, message })
}

impl Lease {
    /// No members, no holder, epoch 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// A lease whose epochs continue after `epoch` (a room that existed before): a robot that
    /// saw epoch 7 must never be sent epoch 1 again.
    pub fn with_epoch(epoch: u32) -> Self {
        Lease {
            epoch,
            ..Self::default()
        }
    }

    /// Who may drive now.
    pub fn holder(&self) -> Option<SessionId> {
        self.holder
    }

    /// Stamped into every forwarded frame; the robot ignores frames of older epochs.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Does `id` hold the lease now.
    pub fn is_holder(&self, id: SessionId) -> bool {
        self.holder == Some(id)
    }

    /// Who asked the current holder for control, oldest first.
    pub fn pending_requests(&self) -> &[SessionId] {
        &self.pending
    }

    /// The holder is suspended (silent): its frames do not drive.
    pub fn is_suspended(&self) -> bool {
        self.suspended_until.is_some()
    }

    /// May `id`'s frames drive the robot now: it holds the lease and is not suspended.
    pub fn drives(&self, id: SessionId) -> bool {
        self.is_holder(id) && !self.is_suspended()
    }

    /// When the shell must send the next [`LeaseInput::Tick`]: the holder's token expiry, or
    /// the end of its suspension.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let expiry = self
            .holder
            .and_then(|h| self.members.get(&h))
            .map(|m| m.expires_at_ms);
        match (expiry, self.suspended_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Apply one input. At most one output per input, so this returns an `Option`.
    pub fn handle(&mut self, input: LeaseInput) -> Option<LeaseOutput> {
        match input {
            LeaseInput::Join(m) => {
                // Session ids are unique per connection, so a second join is a shell bug; keeping
                // the first registration means a re-join can never upgrade a role or expiry.
                self.members.entry(m.id).or_insert(m);
                None
            }
            LeaseInput::Leave { id } => {
                self.members.remove(&id)?;
                self.pending.retain(|p| *p != id);
                if self.is_holder(id) {
                    self.change(None, LeaseReason::Disconnected)
                } else {
                    None
                }
            }
            LeaseInput::Request { from } => self.request(from),
            LeaseInput::Grant { by, to } => {
                if !self.is_holder(by) {
                    return rejected(by, "not_holder", "only the lease holder can grant control");
                }
                if !self.pending.contains(&to) {
                    return rejected(
                        by,
                        "no_request",
                        "that participant has not asked for control",
                    );
                }
                if self.is_expired(to) {
                    return rejected(by, "expired", "that participant's session has expired");
                }
                self.change(Some(to), LeaseReason::Handoff)
            }
            LeaseInput::Deny { by, to } => {
                if !self.is_holder(by) {
                    return rejected(by, "not_holder", "only the lease holder can deny control");
                }
                let before = self.pending.len();
                self.pending.retain(|p| *p != to);
                if self.pending.len() == before {
                    return rejected(
                        by,
                        "no_request",
                        "that participant has not asked for control",
                    );
                }
                Some(LeaseOutput::Denied { to })
            }
            LeaseInput::Handoff { by, to } => self.handoff(by, to),
            LeaseInput::Release { by } => {
                if !self.is_holder(by) {
                    return rejected(
                        by,
                        "not_holder",
                        "only the lease holder can release control",
                    );
                }
                self.change(None, LeaseReason::Released)
            }
            LeaseInput::Tick { now_ms } => {
                // A shell clock that steps back must not un-expire anyone.
                self.now_ms = self.now_ms.max(now_ms);
                match self.holder {
                    Some(h) if self.is_expired(h) => self.change(None, LeaseReason::Expired),
                    Some(_) if self.suspended_until.is_some_and(|t| t <= self.now_ms) => {
                        self.change(None, LeaseReason::Disconnected)
                    }
                    _ => None,
                }
            }
            LeaseInput::Suspend { id, until_ms } => {
                if !self.is_holder(id) || self.suspended_until.is_some() {
                    return None;
                }
                self.suspended_until = Some(until_ms);
                Some(LeaseOutput::Suspended {
                    holder: id,
                    epoch: self.epoch,
                })
            }
            LeaseInput::Resume { id } => {
                if !self.is_holder(id) || self.suspended_until.take().is_none() {
                    return None;
                }
                Some(LeaseOutput::Resumed {
                    holder: id,
                    epoch: self.epoch,
                })
            }
            LeaseInput::AdminRevoke => {
                self.holder?;
                self.change(None, LeaseReason::Revoked)
            }
            LeaseInput::Withdraw { id } => {
                let m = self.members.get_mut(&id)?;
                m.can_control = false;
                self.pending.retain(|p| *p != id);
                if self.is_holder(id) {
                    self.change(None, LeaseReason::Revoked)
                } else {
                    None
                }
            }
        }
    }

    fn request(&mut self, from: SessionId) -> Option<LeaseOutput> {
        let Some(m) = self.members.get(&from).copied() else {
            return rejected(from, "not_in_room", "you are not in this room");
        };
        if m.role != Role::Doctor {
            return rejected(from, "forbidden", "only doctors can control the robot");
        }
        if self.is_expired(from) {
            return rejected(from, "expired", "your session has expired");
        }
        match self.holder {
            Some(h) if h == from => rejected(from, "already_holder", "you already have control"),
            Some(holder) => {
                // Asking twice must not let a requester nag the holder with repeated prompts.
                if self.pending.contains(&from) {
                    return None;
                }
                self.pending.push(from);
                Some(LeaseOutput::Requested { from, holder })
            }
            None if m.can_control => self.change(Some(from), LeaseReason::Granted),
            None => rejected(
                from,
                "no_holder",
                "nobody has control; only the booking's doctor can take it",
            ),
        }
    }

    fn handoff(&mut self, by: SessionId, to: SessionId) -> Option<LeaseOutput> {
        if !self.is_holder(by) {
            return rejected(
                by,
                "not_holder",
                "only the lease holder can hand off control",
            );
        }
        if to == by {
            return rejected(by, "already_holder", "you already have control");
        }
        let Some(target) = self.members.get(&to) else {
            return rejected(by, "not_in_room", "that participant is not in this room");
        };
        // A consultant may receive the lease without can_control: the holder vouches for them.
        if target.role != Role::Doctor {
            return rejected(by, "forbidden", "control can only be handed to a doctor");
        }
        if self.is_expired(to) {
            return rejected(by, "expired", "that participant's session has expired");
        }
        self.change(Some(to), LeaseReason::Handoff)
    }

    fn is_expired(&self, id: SessionId) -> bool {
        self.members
            .get(&id)
            .is_none_or(|m| m.expires_at_ms <= self.now_ms)
    }

    /// The only place the holder or epoch changes.
    fn change(&mut self, holder: Option<SessionId>, reason: LeaseReason) -> Option<LeaseOutput> {
        debug_assert_ne!(self.holder, holder, "a change must change the holder");
        self.holder = holder;
        self.suspended_until = None;
        // 2^32 changes in one room's lifetime is not reachable; wrapping keeps this panic-free.
        self.epoch = self.epoch.wrapping_add(1);
        // Requests are addressed to one holder; the new one never saw them. The Lease event
        // tells requesters to ask again.
        self.pending.clear();
        Some(LeaseOutput::Changed {
            holder,
            epoch: self.epoch,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FAR: u64 = u64::MAX;

    fn member(id: u64, role: Role, can_control: bool) -> Member {
        Member {
            id: SessionId(id),
            role,
            can_control,
            expires_at_ms: FAR,
        }
    }

    fn s(id: u64) -> SessionId {
        SessionId(id)
    }

    /// Room with 1 = booking doctor, 2 = consultant, 3 = observer, 4 = robot, 5 = consultant.
    fn room() -> Lease {
        let mut l = Lease::new();
        for m in [
            member(1, Role::Doctor, true),
            member(2, Role::Doctor, false),
            member(3, Role::Observer, false),
            member(4, Role::Robot, true),
            member(5, Role::Doctor, false),
        ] {
            assert_eq!(l.handle(LeaseInput::Join(m)), None);
        }
        l
    }

    fn code(out: Option<LeaseOutput>) -> &'static str {
        match out {
            Some(LeaseOutput::Rejected { code, .. }) => code,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_silent_holder_is_suspended_and_resumes_with_the_same_epoch_or_loses_the_lease() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        let epoch = l.epoch();
        assert_eq!(
            l.handle(LeaseInput::Suspend {
                id: s(1),
                until_ms: 5_000
            }),
            Some(LeaseOutput::Suspended {
                holder: s(1),
                epoch
            })
        );
        assert!(!l.drives(s(1)) && l.is_holder(s(1)));
        assert_eq!(l.next_deadline_ms(), Some(5_000));
        // Suspending again, or someone else, changes nothing.
        assert_eq!(
            l.handle(LeaseInput::Suspend {
                id: s(1),
                until_ms: 9_000
            }),
            None
        );
        assert_eq!(
            l.handle(LeaseInput::Suspend {
                id: s(2),
                until_ms: 9_000
            }),
            None
        );
        assert_eq!(
            l.handle(LeaseInput::Resume { id: s(1) }),
            Some(LeaseOutput::Resumed {
                holder: s(1),
                epoch
            })
        );
        assert!(l.drives(s(1)));
        assert_eq!(l.epoch(), epoch, "same epoch after a resume");
        assert_eq!(l.handle(LeaseInput::Resume { id: s(1) }), None);
        // Silent past the grace period: the lease ends.
        l.handle(LeaseInput::Suspend {
            id: s(1),
            until_ms: 7_000,
        });
        assert_eq!(l.handle(LeaseInput::Tick { now_ms: 6_999 }), None);
        assert_eq!(
            l.handle(LeaseInput::Tick { now_ms: 7_000 }),
            changed(None, epoch + 1, LeaseReason::Disconnected)
        );
        assert!(!l.is_suspended());
    }

    fn changed(holder: Option<u64>, epoch: u32, reason: LeaseReason) -> Option<LeaseOutput> {
        Some(LeaseOutput::Changed {
            holder: holder.map(SessionId),
            epoch,
            reason,
        })
    }

    #[test]
    fn starts_free_at_epoch_zero() {
        let l = room();
        assert_eq!(l.holder(), None);
        assert_eq!(l.epoch(), 0);
        assert_eq!(l.next_deadline_ms(), None);
    }

    #[test]
    fn booking_doctor_takes_a_free_lease() {
        let mut l = room();
        assert_eq!(
            l.handle(LeaseInput::Request { from: s(1) }),
            changed(Some(1), 1, LeaseReason::Granted)
        );
        assert!(l.is_holder(s(1)));
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(1) })),
            "already_holder"
        );
        assert_eq!(l.epoch(), 1);
    }

    #[test]
    fn consultant_cannot_take_a_free_lease() {
        let mut l = room();
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(2) })),
            "no_holder"
        );
        assert_eq!(l.holder(), None);
    }

    #[test]
    fn observers_and_robots_are_forbidden() {
        let mut l = room();
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(3) })),
            "forbidden"
        );
        // The robot's token says can_control; its role still forbids it.
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(4) })),
            "forbidden"
        );
        l.handle(LeaseInput::Request { from: s(1) });
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(3) })),
            "forbidden"
        );
        assert!(l.pending_requests().is_empty());
    }

    #[test]
    fn strangers_are_not_in_room() {
        let mut l = room();
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(99) })),
            "not_in_room"
        );
    }

    #[test]
    fn request_while_held_asks_the_holder_once() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        assert_eq!(
            l.handle(LeaseInput::Request { from: s(2) }),
            Some(LeaseOutput::Requested {
                from: s(2),
                holder: s(1)
            })
        );
        assert_eq!(l.handle(LeaseInput::Request { from: s(2) }), None);
        assert_eq!(l.pending_requests(), &[s(2)]);
        assert_eq!(l.epoch(), 1);
    }

    #[test]
    fn booking_doctor_asks_like_anyone_else_while_it_is_held() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        l.handle(LeaseInput::Handoff { by: s(1), to: s(2) });
        // can_control takes a free lease only; it does not snatch one from the holder.
        assert_eq!(
            l.handle(LeaseInput::Request { from: s(1) }),
            Some(LeaseOutput::Requested {
                from: s(1),
                holder: s(2)
            })
        );
        assert!(l.is_holder(s(2)));
    }

    #[test]
    fn holder_grants_a_request() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        l.handle(LeaseInput::Request { from: s(2) });
        assert_eq!(
            code(l.handle(LeaseInput::Grant { by: s(2), to: s(2) })),
            "not_holder"
        );
        assert_eq!(
            code(l.handle(LeaseInput::Grant { by: s(1), to: s(5) })),
            "no_request"
        );
        assert_eq!(
            l.handle(LeaseInput::Grant { by: s(1), to: s(2) }),
            changed(Some(2), 2, LeaseReason::Handoff)
        );
        assert!(l.pending_requests().is_empty());
    }

    #[test]
    fn grant_to_a_requester_who_left_fails() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        l.handle(LeaseInput::Request { from: s(2) });
        l.handle(LeaseInput::Leave { id: s(2) });
        assert!(l.pending_requests().is_empty());
        assert_eq!(
            code(l.handle(LeaseInput::Grant { by: s(1), to: s(2) })),
            "no_request"
        );
        assert!(l.is_holder(s(1)));
    }

    #[test]
    fn holder_denies_a_request() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        l.handle(LeaseInput::Request { from: s(2) });
        l.handle(LeaseInput::Request { from: s(5) });
        assert_eq!(
            code(l.handle(LeaseInput::Deny { by: s(5), to: s(2) })),
            "not_holder"
        );
        assert_eq!(
            l.handle(LeaseInput::Deny { by: s(1), to: s(2) }),
            Some(LeaseOutput::Denied { to: s(2) })
        );
        assert_eq!(l.pending_requests(), &[s(5)]);
        assert_eq!(
            code(l.handle(LeaseInput::Deny { by: s(1), to: s(2) })),
            "no_request"
        );
        assert_eq!(l.epoch(), 1);
    }

    #[test]
    fn handoff_rules() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        let h = |l: &mut Lease, by, to| {
            l.handle(LeaseInput::Handoff {
                by: s(by),
                to: s(to),
            })
        };
        assert_eq!(code(h(&mut l, 2, 5)), "not_holder");
        assert_eq!(code(h(&mut l, 1, 1)), "already_holder");
        assert_eq!(code(h(&mut l, 1, 3)), "forbidden");
        assert_eq!(code(h(&mut l, 1, 4)), "forbidden");
        assert_eq!(code(h(&mut l, 1, 99)), "not_in_room");
        assert_eq!(l.epoch(), 1);
        // To a consultant without can_control, unasked.
        assert_eq!(h(&mut l, 1, 2), changed(Some(2), 2, LeaseReason::Handoff));
        // And the consultant may pass it on.
        assert_eq!(h(&mut l, 2, 5), changed(Some(5), 3, LeaseReason::Handoff));
    }

    #[test]
    fn change_clears_requests_made_to_the_old_holder() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        l.handle(LeaseInput::Request { from: s(2) });
        l.handle(LeaseInput::Handoff { by: s(1), to: s(5) });
        assert!(l.pending_requests().is_empty());
        assert_eq!(
            code(l.handle(LeaseInput::Grant { by: s(5), to: s(2) })),
            "no_request"
        );
    }

    #[test]
    fn release() {
        let mut l = room();
        assert_eq!(
            code(l.handle(LeaseInput::Release { by: s(1) })),
            "not_holder"
        );
        l.handle(LeaseInput::Request { from: s(1) });
        assert_eq!(
            code(l.handle(LeaseInput::Release { by: s(2) })),
            "not_holder"
        );
        assert_eq!(
            l.handle(LeaseInput::Release { by: s(1) }),
            changed(None, 2, LeaseReason::Released)
        );
        assert_eq!(l.holder(), None);
    }

    #[test]
    fn holder_leaving_disconnects() {
        let mut l = room();
        l.handle(LeaseInput::Request { from: s(1) });
        assert_eq!(l.handle(LeaseInput::Leave { id: s(2) }), None);
        assert_eq!(
            l.handle(LeaseInput::Leave { id: s(1) }),
            changed(None, 2, LeaseReason::Disconnected)
        );
        assert_eq!(l.handle(LeaseInput::Leave { id: s(1) }), None);
        assert_eq!(l.epoch(), 2);
    }

    #[test]
    fn expiry_on_tick() {
        let mut l = Lease::new();
        l.handle(LeaseInput::Join(Member {
            expires_at_ms: 1_000,
            ..member(1, Role::Doctor, true)
        }));
        l.handle(LeaseInput::Request { from: s(1) });
        assert_eq!(l.next_deadline_ms(), Some(1_000));
        assert_eq!(l.handle(LeaseInput::Tick { now_ms: 999 }), None);
        assert_eq!(
            l.handle(LeaseInput::Tick { now_ms: 1_000 }),
            changed(None, 2, LeaseReason::Expired)
        );
        assert_eq!(l.next_deadline_ms(), None);
        // The expired booking doctor cannot take it straight back.
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(1) })),
            "expired"
        );
        // A clock stepping back does not revive the token.
        l.handle(LeaseInput::Tick { now_ms: 10 });
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(1) })),
            "expired"
        );
    }

    #[test]
    fn cannot_hand_to_an_expired_member() {
        let mut l = room();
        l.handle(LeaseInput::Join(Member {
            expires_at_ms: 500,
            ..member(6, Role::Doctor, false)
        }));
        l.handle(LeaseInput::Request { from: s(1) });
        l.handle(LeaseInput::Request { from: s(6) });
        l.handle(LeaseInput::Tick { now_ms: 600 });
        assert_eq!(
            code(l.handle(LeaseInput::Handoff { by: s(1), to: s(6) })),
            "expired"
        );
        assert_eq!(
            code(l.handle(LeaseInput::Grant { by: s(1), to: s(6) })),
            "expired"
        );
        assert!(l.is_holder(s(1)));
    }

    #[test]
    fn admin_revoke() {
        let mut l = room();
        assert_eq!(l.handle(LeaseInput::AdminRevoke), None);
        l.handle(LeaseInput::Request { from: s(1) });
        assert_eq!(
            l.handle(LeaseInput::AdminRevoke),
            changed(None, 2, LeaseReason::Revoked)
        );
        assert_eq!(l.handle(LeaseInput::AdminRevoke), None);
    }

    #[test]
    fn rejoin_cannot_change_role() {
        let mut l = room();
        l.handle(LeaseInput::Join(member(3, Role::Doctor, true)));
        assert_eq!(
            code(l.handle(LeaseInput::Request { from: s(3) })),
            "forbidden"
        );
    }

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![
            3 => Just(Role::Doctor),
            1 => Just(Role::Observer),
            1 => Just(Role::Robot),
        ]
    }

    /// Stand-ins resolved when the input is applied, so that the holder and pending requesters
    /// act often enough for the properties to bite (random ids alone rarely hit the holder).
    const HOLDER: SessionId = SessionId(100);
    const PENDING: SessionId = SessionId(101);

    fn resolve(l: &Lease, id: SessionId) -> SessionId {
        match id {
            HOLDER => l.holder().unwrap_or(id),
            PENDING => l.pending_requests().first().copied().unwrap_or(id),
            _ => id,
        }
    }

    fn resolved(l: &Lease, input: LeaseInput) -> LeaseInput {
        let r = |id| resolve(l, id);
        match input {
            LeaseInput::Leave { id } => LeaseInput::Leave { id: r(id) },
            LeaseInput::Grant { by, to } => LeaseInput::Grant {
                by: r(by),
                to: r(to),
            },
            LeaseInput::Deny { by, to } => LeaseInput::Deny {
                by: r(by),
                to: r(to),
            },
            LeaseInput::Handoff { by, to } => LeaseInput::Handoff {
                by: r(by),
                to: r(to),
            },
            LeaseInput::Release { by } => LeaseInput::Release { by: r(by) },
            LeaseInput::Withdraw { id } => LeaseInput::Withdraw { id: r(id) },
            LeaseInput::Suspend { id, until_ms } => LeaseInput::Suspend {
                id: r(id),
                until_ms,
            },
            LeaseInput::Resume { id } => LeaseInput::Resume { id: r(id) },
            other => other,
        }
    }

    fn input() -> impl Strategy<Value = LeaseInput> {
        let id = (0u64..5).prop_map(SessionId);
        let actor = prop_oneof![2 => id.clone(), 3 => Just(HOLDER)];
        let target = prop_oneof![3 => id.clone(), 1 => Just(PENDING), 1 => Just(HOLDER)];
        // Most tokens outlive the test's clock; some run out in the middle of it.
        let expiry = prop_oneof![3 => Just(FAR), 1 => 0u64..2_000];
        prop_oneof![
            4 => (id.clone(), role(), any::<bool>(), expiry).prop_map(
                |(id, role, can_control, expires_at_ms)| LeaseInput::Join(Member {
                    id,
                    role,
                    can_control,
                    expires_at_ms
                })
            ),
            1 => prop_oneof![id.clone(), Just(HOLDER)].prop_map(|id| LeaseInput::Leave { id }),
            3 => id.clone().prop_map(|from| LeaseInput::Request { from }),
            2 => (actor.clone(), target.clone()).prop_map(|(by, to)| LeaseInput::Grant { by, to }),
            1 => (actor.clone(), target.clone()).prop_map(|(by, to)| LeaseInput::Deny { by, to }),
            2 => (actor.clone(), target).prop_map(|(by, to)| LeaseInput::Handoff { by, to }),
            1 => actor.prop_map(|by| LeaseInput::Release { by }),
            1 => (0u64..2_000).prop_map(|now_ms| LeaseInput::Tick { now_ms }),
            1 => Just(LeaseInput::AdminRevoke),
            1 => prop_oneof![id.clone(), Just(HOLDER)].prop_map(|id| LeaseInput::Withdraw { id }),
            1 => (prop_oneof![id.clone(), Just(HOLDER)], 0u64..2_000)
                .prop_map(|(id, until_ms)| LeaseInput::Suspend { id, until_ms }),
            1 => prop_oneof![id.clone(), Just(HOLDER)].prop_map(|id| LeaseInput::Resume { id }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn invariants_hold(inputs in proptest::collection::vec(input(), 0..200)) {
            let mut l = Lease::new();
            let mut latest_tick = 0u64;
            for input in inputs {
                let input = resolved(&l, input);
                let before_holder = l.holder();
                let before_epoch = l.epoch();
                let out = l.handle(input);

                match out {
                    Some(LeaseOutput::Changed { holder, epoch, reason }) => {
                        prop_assert_eq!(epoch, before_epoch + 1);
                        prop_assert_eq!(epoch, l.epoch());
                        prop_assert_eq!(holder, l.holder());
                        prop_assert_ne!(before_holder, holder, "Changed without a change");
                        // Each change is the one its input allows, by the one allowed to make it.
                        match input {
                            LeaseInput::Request { from } => {
                                prop_assert_eq!(reason, LeaseReason::Granted);
                                prop_assert_eq!(before_holder, None);
                                prop_assert_eq!(holder, Some(from));
                                prop_assert!(l.members.get(&from).is_some_and(|m| m.can_control));
                            }
                            LeaseInput::Grant { by, to } | LeaseInput::Handoff { by, to } => {
                                prop_assert_eq!(reason, LeaseReason::Handoff);
                                prop_assert_eq!(before_holder, Some(by));
                                prop_assert_eq!(holder, Some(to));
                            }
                            LeaseInput::Release { by } => {
                                prop_assert_eq!(reason, LeaseReason::Released);
                                prop_assert_eq!(before_holder, Some(by));
                            }
                            LeaseInput::Leave { id } => {
                                prop_assert_eq!(reason, LeaseReason::Disconnected);
                                prop_assert_eq!(before_holder, Some(id));
                            }
                            LeaseInput::Tick { .. } => prop_assert!(matches!(
                                reason,
                                LeaseReason::Expired | LeaseReason::Disconnected
                            )),
                            LeaseInput::AdminRevoke => prop_assert_eq!(reason, LeaseReason::Revoked),
                            LeaseInput::Withdraw { id } => {
                                prop_assert_eq!(reason, LeaseReason::Revoked);
                                prop_assert_eq!(before_holder, Some(id));
                            }
                            LeaseInput::Suspend { .. } | LeaseInput::Resume { .. } => {
                                prop_assert!(false, "{:?} changed the holder", input);
                            }
                            LeaseInput::Join(_) | LeaseInput::Deny { .. } => {
                                prop_assert!(false, "{:?} changed the lease", input);
                            }
                        }
                    }
                    Some(LeaseOutput::Requested { from, holder }) => {
                        prop_assert_eq!(Some(holder), l.holder());
                        prop_assert!(l.pending_requests().contains(&from));
                        prop_assert_eq!(l.epoch(), before_epoch);
                    }
                    _ => {
                        prop_assert_eq!(l.epoch(), before_epoch, "epoch moved without Changed");
                        prop_assert_eq!(l.holder(), before_holder, "holder moved without Changed");
                    }
                }

                if let Some(h) = l.holder() {
                    let m = l.members.get(&h);
                    prop_assert!(m.is_some(), "holder {h} is not a member");
                    prop_assert_eq!(m.map(|m| m.role), Some(Role::Doctor));
                    prop_assert!(l.pending_requests().iter().all(|p| *p != h));
                }
                for p in l.pending_requests() {
                    prop_assert!(l.members.contains_key(p), "pending {p} is not a member");
                }
                match input {
                    LeaseInput::Leave { id } if before_holder == Some(id) => {
                        prop_assert_eq!(l.holder(), None);
                    }
                    LeaseInput::Tick { now_ms } => {
                        latest_tick = latest_tick.max(now_ms);
                        prop_assert!(l.next_deadline_ms().is_none_or(|d| d > latest_tick));
                    }
                    _ => {}
                }
            }
        }
    }
}
