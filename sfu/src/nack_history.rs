//! How much retransmission history a viewer's video stream keeps, from its round-trip time.
//!
//! A NACK can only be answered while the packet is still in the sender's history, and the
//! history is the biggest thing a viewer costs the SFU (str0m keeps a ~430-byte entry per
//! packet and viewer; the payload itself is shared). A viewer on the hospital LAN NACKs within
//! a few milliseconds, a doctor on a VPN within a couple of hundred: so the history aims at four
//! round trips (a NACK, and retries if the resend is lost too), never under 100 ms, never over
//! a second, and changes only when that aim moves by a factor of two, because str0m empties
//! the history when it is resized (so in between it holds two to eight round trips).
//!
//! Not here: the resending itself (str0m) or measuring the round trip (str0m, from RTCP).

use std::time::Duration;

/// Before any round trip is known, and the least ever kept.
pub const MIN: Duration = Duration::from_millis(100);
/// The most ever kept.
pub const MAX: Duration = Duration::from_secs(1);
/// Round trips of history.
const ROUND_TRIPS: u32 = 4;

/// The history length of one viewer's video stream. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackHistory {
    current: Duration,
}

impl Default for NackHistory {
    fn default() -> Self {
        NackHistory { current: MIN }
    }
}

impl NackHistory {
    /// The length in force (what str0m was last told).
    pub fn current(&self) -> Duration {
        self.current
    }

    /// A round-trip measurement. Returns the new history length if it should change.
    pub fn on_rtt(&mut self, rtt: Duration) -> Option<Duration> {
        let want = (rtt * ROUND_TRIPS).clamp(MIN, MAX);
        let grow = want >= self.current * 2;
        let shrink = want * 2 <= self.current;
        if grow || shrink {
            self.current = want;
            Some(want)
        } else {
            None
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
    fn a_lan_viewer_keeps_the_minimum() {
        let mut h = NackHistory::default();
        assert_eq!(h.current(), MIN);
        assert_eq!(h.on_rtt(ms(1)), None);
        assert_eq!(
            h.on_rtt(ms(20)),
            None,
            "80 ms wanted, within a factor of two of 100"
        );
        assert_eq!(h.current(), MIN);
    }

    #[test]
    fn a_far_viewer_gets_four_round_trips_within_bounds() {
        let mut h = NackHistory::default();
        assert_eq!(h.on_rtt(ms(80)), Some(ms(320)));
        // Jitter around the same round trip changes nothing.
        assert_eq!(h.on_rtt(ms(100)), None);
        assert_eq!(h.on_rtt(ms(60)), None);
        // A satellite link is capped.
        assert_eq!(h.on_rtt(ms(700)), Some(MAX));
        // Back on a good network, the memory is given back.
        assert_eq!(h.on_rtt(ms(5)), Some(MIN));
    }
}
