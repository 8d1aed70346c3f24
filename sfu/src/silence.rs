//! How long a session may be silent before the SFU acts: fast loss detection.
//!
//! str0m's ICE-lite agent notices a dead peer only after about 15 s (it sends no checks of its
//! own). Every connected WebRTC peer sends something at least once a second (RTCP receiver
//! reports, STUN consent checks), so a silence of a few seconds means the connection is gone or
//! moving. The timeouts differ by what the silence costs:
//!
//! - **the robot** ([`SilenceConfig::robot`], 3 s): its session is ended, so the room shows it
//!   offline and the robot reconnects (its own watchdog stopped it long before);
//! - **the lease holder** ([`SilenceConfig::holder`], 3.5 s): the robot is stopped and the lease
//!   *suspended*; heard from again within [`SilenceConfig::grace`] (10 s, an ICE restart after a
//!   Wi-Fi roam), it drives again with the same epoch, else the lease ends and so does the
//!   session;
//! - **everyone else** ([`SilenceConfig::others`], 8 s): the session ends.
//!
//! A closed ICE-TCP connection is silence at once (the worker ends its session directly).
//!
//! Not here: measuring silence (the switchboard stamps every datagram) or the lease itself.

use std::time::Duration;

use bedside_proto::Role;

/// The silence timeouts. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceConfig {
    /// The robot's session ends after this.
    pub robot: Duration,
    /// The lease holder's lease is suspended after this.
    pub holder: Duration,
    /// ... and given back if it is heard from within this.
    pub grace: Duration,
    /// Anyone else's session ends after this.
    pub others: Duration,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        SilenceConfig {
            robot: Duration::from_secs(3),
            holder: Duration::from_millis(3500),
            grace: Duration::from_secs(10),
            others: Duration::from_secs(8),
        }
    }
}

/// What to do about one session's silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing yet; look again after this much more silence.
    Wait(Duration),
    /// Suspend its lease (it holds one and is not suspended yet).
    Suspend,
    /// End the session.
    End,
}

impl SilenceConfig {
    /// The verdict for a session of `role` silent for `silent`, holding the lease or not,
    /// already suspended or not.
    pub fn verdict(&self, role: Role, holder: bool, suspended: bool, silent: Duration) -> Verdict {
        let limit = match role {
            Role::Robot => self.robot,
            _ if holder => {
                if !suspended && silent >= self.holder {
                    return Verdict::Suspend;
                }
                if !suspended {
                    return Verdict::Wait(self.holder - silent);
                }
                self.holder + self.grace
            }
            _ => self.others,
        };
        match limit.checked_sub(silent) {
            Some(left) if !left.is_zero() => Verdict::Wait(left),
            _ => Verdict::End,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn each_role_has_its_timeout() {
        let c = SilenceConfig::default();
        assert_eq!(
            c.verdict(Role::Robot, false, false, ms(2_999)),
            Verdict::Wait(ms(1))
        );
        assert_eq!(
            c.verdict(Role::Robot, false, false, ms(3_000)),
            Verdict::End
        );
        assert_eq!(
            c.verdict(Role::Observer, false, false, ms(7_000)),
            Verdict::Wait(ms(1_000))
        );
        assert_eq!(
            c.verdict(Role::Observer, false, false, ms(8_000)),
            Verdict::End
        );
        assert_eq!(
            c.verdict(Role::Doctor, false, false, ms(8_000)),
            Verdict::End
        );
    }

    #[test]
    fn the_holder_is_suspended_first_and_ended_after_the_grace_period() {
        let c = SilenceConfig::default();
        assert_eq!(
            c.verdict(Role::Doctor, true, false, ms(3_000)),
            Verdict::Wait(ms(500))
        );
        assert_eq!(
            c.verdict(Role::Doctor, true, false, ms(3_500)),
            Verdict::Suspend
        );
        assert_eq!(
            c.verdict(Role::Doctor, true, true, ms(3_500)),
            Verdict::Wait(ms(10_000))
        );
        assert_eq!(
            c.verdict(Role::Doctor, true, true, ms(13_500)),
            Verdict::End
        );
        // Ended, not merely suspended, once the silence outlasts the grace period even if the
        // suspension was never noticed.
        assert_eq!(
            c.verdict(Role::Doctor, true, false, ms(20_000)),
            Verdict::Suspend
        );
    }
}
