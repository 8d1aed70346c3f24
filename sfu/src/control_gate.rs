//! The control gate: decides whether one joystick frame from a participant reaches the robot.
//!
//! Every message on a participant's `control` data channel goes through [`ControlGate::check`],
//! which either returns the 24 bytes to send to the robot, stamped with the current lease epoch,
//! or says why it was dropped ([`DropReason::label`] is the Prometheus label). Only the lease
//! holder's well-formed, newer, not-too-fast Drive frames pass, and while the e-stop is latched
//! only frames that ask for no motion. The epoch a client writes is always overwritten, so a
//! forged epoch cannot get a frame past the robot's epoch check.
//!
//! The gate also originates the SFU's own Stop frames ([`ControlGate::stop_frame`]), which the
//! shell sends to the robot on every lease change and e-stop.
//!
//! Not here: who holds the lease ([`crate::lease`]), whether the e-stop is latched
//! ([`crate::estop`]), metrics registration, or sending anything. No clock is read: time comes in.

use std::collections::HashMap;
use std::time::Instant;

use bedside_proto::control_frame::{ControlFrame, FrameError, FrameKind, FRAME_LEN};
use bedside_proto::join_token::Role;

use crate::SessionId;

/// Messages longer than this are dropped as `oversized` before decoding: a size well above any
/// frame version is abuse or a broken client, not a version mismatch, and is counted apart.
pub const MAX_CONTROL_BYTES: usize = 64;

/// Rate limits per sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlGateConfig {
    /// Sustained frames per second (clients send 20-50 Hz). Treated as at least 1.
    pub rate_per_sec: u32,
    /// Frames that may pass back to back, e.g. after a Wi-Fi stall delivers a bunch at once.
    pub burst: u32,
}

impl Default for ControlGateConfig {
    fn default() -> Self {
        ControlGateConfig {
            rate_per_sec: 100,
            burst: 10,
        }
    }
}

/// Who sent a frame and the room state it is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameContext {
    /// The sender; rate and sequence state are kept per sender.
    pub from: SessionId,
    /// Observers and the robot are refused before the bytes are even decoded.
    pub role: Role,
    /// Does `from` hold the lease right now.
    pub is_holder: bool,
    /// The current lease epoch, stamped into forwarded frames.
    pub epoch: u32,
    /// Only "hold still" frames pass while latched.
    pub estop_latched: bool,
}

/// Why a frame did not reach the robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Observers never control.
    Observer,
    /// The robot sent a control frame (it only receives them).
    Robot,
    /// More than [`MAX_CONTROL_BYTES`].
    Oversized,
    /// Not a valid frame; labelled by [`FrameError::reason`].
    Malformed(FrameError),
    /// The sender does not hold the lease.
    NotHolder,
    /// A client sent a Stop frame; only the SFU originates those (label `bad_kind`).
    ClientStop,
    /// Sequence number not newer than the last forwarded one from this sender in this epoch.
    Stale,
    /// Above the sender's rate limit.
    OverRate,
    /// A motion frame while the e-stop is latched.
    EstopLatched,
}

impl DropReason {
    /// Every label [`DropReason::label`] can return, so the shell can create all counters at 0.
    /// (`ClientStop` shares `bad_kind` with an unknown kind byte: both are a kind the client may
    /// not send.)
    pub const LABELS: [&'static str; 11] = [
        "observer",
        "robot",
        "oversized",
        "wrong_size",
        "bad_version",
        "bad_kind",
        "bad_flags",
        "not_holder",
        "stale",
        "over_rate",
        "estop_latched",
    ];

    /// Stable label for the `reason` of the dropped-frames counter.
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::Observer => "observer",
            DropReason::Robot => "robot",
            DropReason::Oversized => "oversized",
            DropReason::Malformed(e) => e.reason(),
            DropReason::NotHolder => "not_holder",
            DropReason::ClientStop => "bad_kind",
            DropReason::Stale => "stale",
            DropReason::OverRate => "over_rate",
            DropReason::EstopLatched => "estop_latched",
        }
    }
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send these bytes to the robot's `control` channel.
    Forward([u8; FRAME_LEN]),
    /// Count it under [`DropReason::label`] and forget it.
    Drop(DropReason),
}

/// Per-sender state; only lease holders get one, so the map stays as small as the set of
/// participants who have held the lease, and [`ControlGate::forget`] clears them on leave.
#[derive(Debug)]
struct SenderState {
    /// The epoch `last_seq` belongs to; a new lease starts a new sequence space.
    seq_epoch: u32,
    last_seq: Option<u32>,
    bucket: TokenBucket,
}

/// Integer token bucket: credit is in nanoseconds of "send time", one frame costs
/// `1e9 / rate` ns, and the credit is capped at `burst` frames. Integers keep it exact.
#[derive(Debug)]
struct TokenBucket {
    credit_ns: u64,
    last: Instant,
}

impl TokenBucket {
    fn full(cfg: &ControlGateConfig, now: Instant) -> Self {
        TokenBucket {
            credit_ns: cap_ns(cfg),
            last: now,
        }
    }

    fn take(&mut self, cfg: &ControlGateConfig, now: Instant) -> bool {
        // The shell's clock never steps back, but if `now` is older we simply add nothing.
        let elapsed = now.saturating_duration_since(self.last);
        if now > self.last {
            self.last = now;
        }
        let elapsed_ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.credit_ns = self.credit_ns.saturating_add(elapsed_ns).min(cap_ns(cfg));
        let cost = cost_ns(cfg);
        if self.credit_ns >= cost {
            self.credit_ns -= cost;
            true
        } else {
            false
        }
    }
}

fn cost_ns(cfg: &ControlGateConfig) -> u64 {
    1_000_000_000 / u64::from(cfg.rate_per_sec.max(1))
}

fn cap_ns(cfg: &ControlGateConfig) -> u64 {
    cost_ns(cfg).saturating_mul(u64::from(cfg.burst))
}

/// The control gate of one room. See the module docs.
#[derive(Debug)]
pub struct ControlGate {
    cfg: ControlGateConfig,
    senders: HashMap<SessionId, SenderState>,
    /// Sequence of the SFU's own Stop frames.
    stop_seq: u32,
}

impl Default for ControlGate {
    fn default() -> Self {
        Self::new(ControlGateConfig::default())
    }
}

impl ControlGate {
    /// A gate that has seen no sender yet.
    pub fn new(cfg: ControlGateConfig) -> Self {
        ControlGate {
            cfg,
            senders: HashMap::new(),
            stop_seq: 0,
        }
    }

    /// Judge one message from a `control` channel. Never panics, whatever the bytes.
    pub fn check(&mut self, ctx: FrameContext, bytes: &[u8], now: Instant) -> Verdict {
        match self.judge(ctx, bytes, now) {
            Ok(out) => Verdict::Forward(out),
            Err(reason) => Verdict::Drop(reason),
        }
    }

    fn judge(
        &mut self,
        ctx: FrameContext,
        bytes: &[u8],
        now: Instant,
    ) -> Result<[u8; FRAME_LEN], DropReason> {
        // Role first: the cheapest check, and the one that must hold whatever the lease says.
        match ctx.role {
            Role::Observer => return Err(DropReason::Observer),
            Role::Robot => return Err(DropReason::Robot),
            Role::Doctor => {}
        }
        if bytes.len() > MAX_CONTROL_BYTES {
            return Err(DropReason::Oversized);
        }
        let frame = ControlFrame::decode(bytes).map_err(DropReason::Malformed)?;
        if !ctx.is_holder {
            return Err(DropReason::NotHolder);
        }
        // A client-made Stop would look to the robot like the SFU's own lease-change stop.
        if frame.kind != FrameKind::Drive {
            return Err(DropReason::ClientStop);
        }

        let cfg = self.cfg;
        let state = self.senders.entry(ctx.from).or_insert_with(|| SenderState {
            seq_epoch: ctx.epoch,
            last_seq: None,
            bucket: TokenBucket::full(&cfg, now),
        });
        if state.seq_epoch != ctx.epoch {
            state.seq_epoch = ctx.epoch;
            state.last_seq = None;
        }
        // Plain comparison, no wrap-around: a session would need 2.7 years at 50 Hz to wrap.
        if state.last_seq.is_some_and(|last| frame.seq <= last) {
            return Err(DropReason::Stale);
        }
        if !state.bucket.take(&cfg, now) {
            return Err(DropReason::OverRate);
        }
        // While latched, only "hold still" may pass (the release zero frame). Buttons must be
        // zero too: what they do is robot-defined and may include motion such as docking.
        if ctx.estop_latched && !(frame.is_still() && frame.buttons == 0) {
            return Err(DropReason::EstopLatched);
        }

        state.last_seq = Some(frame.seq);
        let mut out = frame.encode();
        ControlFrame::stamp_epoch(&mut out, ctx.epoch);
        Ok(out)
    }

    /// The SFU's own Stop frame for `epoch`, with the gate's increasing sequence number and the
    /// shell's clock in ms (wrapping, like a client's timestamp).
    pub fn stop_frame(&mut self, epoch: u32, now_ms: u32) -> [u8; FRAME_LEN] {
        self.stop_seq = self.stop_seq.wrapping_add(1);
        ControlFrame::stop(epoch, self.stop_seq, now_ms).encode()
    }

    /// Drop everything known about a participant who left.
    pub fn forget(&mut self, id: SessionId) {
        self.senders.remove(&id);
    }

    /// How many senders the gate holds state for (for tests and a memory gauge).
    pub fn tracked_senders(&self) -> usize {
        self.senders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    const HOLDER: SessionId = SessionId(1);
    const OTHER: SessionId = SessionId(2);

    fn holder(epoch: u32) -> FrameContext {
        FrameContext {
            from: HOLDER,
            role: Role::Doctor,
            is_holder: true,
            epoch,
            estop_latched: false,
        }
    }

    fn drive(seq: u32) -> [u8; FRAME_LEN] {
        ControlFrame::drive(seq, seq.wrapping_mul(20), 100, 0, -50).encode()
    }

    fn dropped(v: Verdict) -> &'static str {
        match v {
            Verdict::Drop(r) => r.label(),
            Verdict::Forward(_) => panic!("expected a drop, got a forward"),
        }
    }

    fn forwarded(v: Verdict) -> ControlFrame {
        match v {
            Verdict::Forward(b) => match ControlFrame::decode(&b) {
                Ok(f) => f,
                Err(e) => panic!("forwarded bytes do not decode: {e}"),
            },
            Verdict::Drop(r) => panic!("expected a forward, got drop {}", r.label()),
        }
    }

    #[test]
    fn forwards_the_holders_frame_with_the_epoch_stamped() {
        let mut g = ControlGate::default();
        let mut b = drive(1);
        ControlFrame::stamp_epoch(&mut b, 999); // forged epoch
        let f = forwarded(g.check(holder(7), &b, Instant::now()));
        assert_eq!(f.epoch, 7);
        assert_eq!(
            f,
            ControlFrame {
                epoch: 7,
                ..ControlFrame::drive(1, 20, 100, 0, -50)
            }
        );
    }

    #[test]
    fn each_drop_reason() {
        let now = Instant::now();
        let mut g = ControlGate::default();
        let role = |role| FrameContext { role, ..holder(1) };
        assert_eq!(
            dropped(g.check(role(Role::Observer), &drive(1), now)),
            "observer"
        );
        assert_eq!(dropped(g.check(role(Role::Robot), &drive(1), now)), "robot");
        assert_eq!(dropped(g.check(holder(1), &[1; 65], now)), "oversized");
        assert_eq!(dropped(g.check(holder(1), &[1; 64], now)), "wrong_size");
        assert_eq!(dropped(g.check(holder(1), &[], now)), "wrong_size");
        let mut b = drive(1);
        b[0] = 2;
        assert_eq!(dropped(g.check(holder(1), &b, now)), "bad_version");
        let mut b = drive(1);
        b[1] = 3;
        assert_eq!(dropped(g.check(holder(1), &b, now)), "bad_kind");
        let mut b = drive(1);
        b[2] = 1;
        assert_eq!(dropped(g.check(holder(1), &b, now)), "bad_flags");
        let other = FrameContext {
            from: OTHER,
            is_holder: false,
            ..holder(1)
        };
        assert_eq!(dropped(g.check(other, &drive(1), now)), "not_holder");
        let stop = ControlFrame::stop(1, 1, 0).encode();
        assert_eq!(dropped(g.check(holder(1), &stop, now)), "bad_kind");
        forwarded(g.check(holder(1), &drive(5), now));
        assert_eq!(dropped(g.check(holder(1), &drive(5), now)), "stale");
        let latched = FrameContext {
            estop_latched: true,
            ..holder(1)
        };
        assert_eq!(dropped(g.check(latched, &drive(6), now)), "estop_latched");
        for seq in 7..100 {
            let _ = g.check(holder(1), &drive(seq), now);
        }
        assert_eq!(dropped(g.check(holder(1), &drive(100), now)), "over_rate");
        // Only holders that passed the frame checks ever got state.
        assert_eq!(g.tracked_senders(), 1);
    }

    #[test]
    fn every_label_is_listed() {
        let reasons = [
            DropReason::Observer,
            DropReason::Robot,
            DropReason::Oversized,
            DropReason::Malformed(FrameError::WrongSize(0)),
            DropReason::Malformed(FrameError::Version(0)),
            DropReason::Malformed(FrameError::Kind(0)),
            DropReason::Malformed(FrameError::Flags),
            DropReason::NotHolder,
            DropReason::ClientStop,
            DropReason::Stale,
            DropReason::OverRate,
            DropReason::EstopLatched,
        ];
        for r in reasons {
            assert!(DropReason::LABELS.contains(&r.label()), "{}", r.label());
        }
    }

    #[test]
    fn estop_lets_still_frames_through() {
        let now = Instant::now();
        let mut g = ControlGate::default();
        let latched = FrameContext {
            estop_latched: true,
            ..holder(1)
        };
        let still = ControlFrame::drive(1, 0, 0, 0, 0).encode();
        forwarded(g.check(latched, &still, now));
        let mut pressed = ControlFrame::drive(2, 0, 0, 0, 0);
        pressed.buttons = 1;
        assert_eq!(
            dropped(g.check(latched, &pressed.encode(), now)),
            "estop_latched"
        );
        // A dropped motion frame did not advance the sequence.
        assert_eq!(dropped(g.check(latched, &drive(3), now)), "estop_latched");
        forwarded(g.check(holder(1), &drive(3), now));
    }

    #[test]
    fn forged_frames_from_non_holders_never_pass() {
        // xorshift: deterministic, so a failure reproduces.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut g = ControlGate::default();
        let start = Instant::now();
        for i in 0..10_000u32 {
            let r = next();
            let bytes: Vec<u8> = if r % 2 == 0 {
                // Well-formed frames with forged epochs, kinds and sequences.
                let mut f = ControlFrame::drive(r as u32, i, r as i16, (r >> 16) as i16, 1);
                f.epoch = (r >> 32) as u32;
                if r % 3 == 0 {
                    f.kind = FrameKind::Stop;
                }
                f.encode().to_vec()
            } else {
                let len = (r % 80) as usize;
                (0..len).map(|_| next() as u8).collect()
            };
            let ctx = FrameContext {
                from: SessionId(2 + u64::from(i % 5)),
                role: if r % 5 == 0 {
                    Role::Observer
                } else {
                    Role::Doctor
                },
                is_holder: false,
                epoch: 3,
                estop_latched: r % 7 == 0,
            };
            let now = start + Duration::from_millis(u64::from(i));
            assert!(matches!(g.check(ctx, &bytes, now), Verdict::Drop(_)));
        }
        assert_eq!(g.tracked_senders(), 0);
    }

    #[test]
    fn holder_at_50_hz_all_pass() {
        let start = Instant::now();
        let mut g = ControlGate::default();
        for seq in 1..=3_000u32 {
            let now = start + Duration::from_millis(20 * u64::from(seq));
            let f = forwarded(g.check(holder(4), &drive(seq), now));
            assert_eq!((f.seq, f.epoch), (seq, 4));
        }
    }

    #[test]
    fn a_burst_above_the_rate_is_cut() {
        let start = Instant::now();
        let mut g = ControlGate::default();
        let mut pass = 0;
        let mut over = 0;
        // 50 frames at once: the burst of 10 passes.
        for seq in 1..=50 {
            match g.check(holder(1), &drive(seq), start) {
                Verdict::Forward(_) => pass += 1,
                Verdict::Drop(DropReason::OverRate) => over += 1,
                Verdict::Drop(r) => panic!("unexpected {}", r.label()),
            }
        }
        assert_eq!((pass, over), (10, 40));
        // Then 400 Hz for one second: the bucket refills at 100/s, so about a quarter pass.
        pass = 0;
        for i in 1..=400u32 {
            let now = start + Duration::from_micros(2_500 * u64::from(i));
            if let Verdict::Forward(_) = g.check(holder(1), &drive(50 + i), now) {
                pass += 1;
            }
        }
        assert!((99..=101).contains(&pass), "{pass} passed");
    }

    #[test]
    fn rate_is_configurable() {
        let start = Instant::now();
        let mut g = ControlGate::new(ControlGateConfig {
            rate_per_sec: 10,
            burst: 2,
        });
        let results: Vec<bool> = (1..=4)
            .map(|seq| matches!(g.check(holder(1), &drive(seq), start), Verdict::Forward(_)))
            .collect();
        assert_eq!(results, [true, true, false, false]);
        let later = start + Duration::from_millis(100);
        forwarded(g.check(holder(1), &drive(5), later));
    }

    #[test]
    fn reordered_and_duplicated_frames_are_stale() {
        let start = Instant::now();
        let mut g = ControlGate::default();
        let mut t = 0;
        let mut send = |g: &mut ControlGate, seq| {
            t += 20;
            g.check(holder(1), &drive(seq), start + Duration::from_millis(t))
        };
        forwarded(send(&mut g, 10));
        assert_eq!(dropped(send(&mut g, 10)), "stale");
        forwarded(send(&mut g, 12));
        assert_eq!(dropped(send(&mut g, 11)), "stale");
        assert_eq!(dropped(send(&mut g, 0)), "stale");
        forwarded(send(&mut g, 13));
    }

    #[test]
    fn a_new_epoch_resets_the_sequence() {
        let now = Instant::now();
        let mut g = ControlGate::default();
        forwarded(g.check(holder(1), &drive(100), now));
        assert_eq!(dropped(g.check(holder(1), &drive(5), now)), "stale");
        // The lease moved away and back: the client may have restarted its counter.
        forwarded(g.check(holder(3), &drive(5), now));
    }

    #[test]
    fn forget_bounds_memory() {
        let now = Instant::now();
        let mut g = ControlGate::default();
        for id in 0..100 {
            let ctx = FrameContext {
                from: SessionId(id),
                ..holder(1)
            };
            forwarded(g.check(ctx, &drive(1), now));
        }
        assert_eq!(g.tracked_senders(), 100);
        for id in 0..100 {
            g.forget(SessionId(id));
        }
        assert_eq!(g.tracked_senders(), 0);
    }

    #[test]
    fn stop_frames_count_up() {
        let mut g = ControlGate::default();
        let a = ControlFrame::decode(&g.stop_frame(5, 1_000));
        let b = ControlFrame::decode(&g.stop_frame(6, 1_020));
        assert_eq!(a, Ok(ControlFrame::stop(5, 1, 1_000)));
        assert_eq!(b, Ok(ControlFrame::stop(6, 2, 1_020)));
    }

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::Doctor), Just(Role::Observer), Just(Role::Robot)]
    }

    /// Arbitrary bytes, or a well-formed frame with arbitrary fields (arbitrary bytes alone
    /// almost never decode, and would leave every check after decoding untested).
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let frame = (
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<[i16; 3]>(),
            any::<u16>(),
        )
            .prop_map(|(stop, epoch, seq, timestamp_ms, [x, y, z], buttons)| {
                ControlFrame {
                    kind: if stop {
                        FrameKind::Stop
                    } else {
                        FrameKind::Drive
                    },
                    epoch,
                    seq,
                    timestamp_ms,
                    linear_x: x,
                    linear_y: y,
                    angular_z: z,
                    buttons,
                }
                .encode()
                .to_vec()
            });
        prop_oneof![proptest::collection::vec(any::<u8>(), 0..100), frame]
    }

    proptest! {
        #[test]
        fn never_panics_and_never_forwards_for_a_non_holder(
            frames in proptest::collection::vec(
                (bytes(), role(), any::<bool>(), any::<u32>(), 0u64..50),
                1..50,
            )
        ) {
            let start = Instant::now();
            let mut g = ControlGate::default();
            for (bytes, role, estop_latched, epoch, ms) in frames {
                let ctx = FrameContext { from: OTHER, role, is_holder: false, epoch, estop_latched };
                let now = start + Duration::from_millis(ms);
                prop_assert!(matches!(g.check(ctx, &bytes, now), Verdict::Drop(_)));
                // The same bytes from the holder: must not panic, and if forwarded, carry the epoch.
                if let Verdict::Forward(out) = g.check(FrameContext { role, ..holder(epoch) }, &bytes, now) {
                    prop_assert_eq!(role, Role::Doctor);
                    prop_assert_eq!(ControlFrame::decode(&out).map(|f| f.epoch), Ok(epoch));
                }
            }
        }
    }
}
