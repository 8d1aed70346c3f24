//! Identifiers of sessions inside the SFU.
//!
//! [`SessionId`] is the internal, non-secret id of one peer connection; it is what other
//! participants see in `events` (presence, lease holder). It is NOT the capability in the
//! `Location: /sessions/{key}` URL: that key is random and secret (see `signalling.rs`), because
//! whoever knows it may end the session.

use std::fmt;

/// Unique per process and never reused, so a late datagram or event cannot reach a newer
/// session. Shown as `s<N>` (its [`Display`](fmt::Display) and `FromStr` forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix('s')
            .and_then(|n| n.parse().ok())
            .map(SessionId)
            .ok_or(())
    }
}
