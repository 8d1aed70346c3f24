//! The media node's copy of the API's deny list: which join tokens no longer open a room, or no
//! longer carry control.
//!
//! The API pushes entries over the node channel (`bedside_proto::node`) when a booking is
//! cancelled, an invitation removed, a user disabled, a robot's credential rotated or a lease
//! revoked; signalling checks every offer's claims here after the signature, and the workers end
//! the live sessions an entry matches. Entries carry their own end (`until`): no token they match
//! outlives it, so the list forgets them and stays as small as the set of recent revocations.
//!
//! Not here: ending sessions (the switchboard) or deciding what to revoke (the API).

use bedside_proto::node::{Deny, DenyScope, RevokeReason};
use bedside_proto::Claims;

/// What the deny list says about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Nothing against it.
    Admit,
    /// It may join, but without control.
    AdmitWithoutControl(RevokeReason),
    /// It is refused.
    Refuse(RevokeReason),
}

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct DenyList {
    entries: Vec<Deny>,
}

impl DenyList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replace everything (a snapshot from the API after a (re)connection).
    pub fn replace(&mut self, entries: Vec<Deny>, now_unix: u64) {
        self.entries = entries;
        self.prune(now_unix);
    }

    /// Add one entry (a live revocation).
    pub fn insert(&mut self, deny: Deny, now_unix: u64) {
        if !self.entries.contains(&deny) {
            self.entries.push(deny);
        }
        self.prune(now_unix);
    }

    /// Forget entries whose tokens have all expired.
    pub fn prune(&mut self, now_unix: u64) {
        self.entries.retain(|d| d.until > now_unix);
    }

    /// How many entries are in force.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the list says about a token with these claims. A refusal wins over a withdrawal of
    /// control.
    pub fn check(&self, claims: &Claims) -> Check {
        let mut verdict = Check::Admit;
        for d in self.entries.iter().filter(|d| d.matches(claims)) {
            match d.scope {
                DenyScope::Access => return Check::Refuse(d.reason),
                DenyScope::Control => verdict = Check::AdmitWithoutControl(d.reason),
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedside_proto::node::DenyTarget;
    use bedside_proto::Role;

    fn deny(target: DenyTarget, scope: DenyScope, until: u64) -> Deny {
        Deny {
            target,
            scope,
            issued_until: None,
            until,
            reason: RevokeReason::BookingCancelled,
        }
    }

    fn claims(booking: &str) -> Claims {
        let mut c = Claims::new("doc", "room", Role::Doctor, 60);
        c.booking = Some(booking.into());
        c.can_control = true;
        c
    }

    #[test]
    fn refusal_wins_over_control_and_entries_expire() {
        let mut l = DenyList::new();
        let b = |b: &str| DenyTarget::Booking { booking: b.into() };
        l.insert(deny(b("b1"), DenyScope::Control, 100), 0);
        assert_eq!(
            l.check(&claims("b1")),
            Check::AdmitWithoutControl(RevokeReason::BookingCancelled)
        );
        l.insert(deny(b("b1"), DenyScope::Access, 50), 0);
        assert_eq!(
            l.check(&claims("b1")),
            Check::Refuse(RevokeReason::BookingCancelled)
        );
        assert_eq!(l.check(&claims("b2")), Check::Admit);
        l.prune(50);
        assert_eq!(l.len(), 1, "the access entry ran out");
        assert!(matches!(
            l.check(&claims("b1")),
            Check::AdmitWithoutControl(_)
        ));
        l.replace(Vec::new(), 0);
        assert!(l.is_empty());
        assert_eq!(l.check(&claims("b1")), Check::Admit);
    }
}
