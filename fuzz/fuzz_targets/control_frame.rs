//! Control frames as the SFU's gate and the wire codec see them: arbitrary bytes from any role,
//! holder or not, latched or not, at arbitrary times. Never a panic; a forwarded frame is always
//! a well-formed frame stamped with the room's epoch; a decoded frame re-encodes to itself.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bedside_proto::{ControlFrame, Role};
use bedside_sfu::control_gate::{ControlGate, ControlGateConfig, FrameContext, Verdict};
use bedside_sfu::SessionId;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Step {
    from: u8,
    role: u8,
    is_holder: bool,
    epoch: u32,
    estop_latched: bool,
    advance_ms: u16,
    bytes: Vec<u8>,
}

fuzz_target!(|steps: Vec<Step>| {
    let mut gate = ControlGate::new(ControlGateConfig::default());
    let mut now = Instant::now();
    for s in steps.into_iter().take(64) {
        if let Ok(f) = ControlFrame::decode(&s.bytes) {
            assert_eq!(ControlFrame::decode(&f.encode()).ok(), Some(f));
        }
        now += Duration::from_millis(u64::from(s.advance_ms));
        let role = match s.role % 4 {
            0 => Role::Robot,
            1 => Role::Doctor,
            2 => Role::Observer,
            _ => Role::Doctor,
        };
        let ctx = FrameContext {
            from: SessionId(u64::from(s.from % 4)),
            role,
            is_holder: s.is_holder,
            epoch: s.epoch,
            estop_latched: s.estop_latched,
        };
        if let Verdict::Forward(out) = gate.check(ctx, &s.bytes, now) {
            let f = ControlFrame::decode(&out).expect("a forwarded frame decodes");
            assert_eq!(f.epoch, s.epoch, "stamped with the room's epoch");
            assert!(s.is_holder && role == Role::Doctor, "only the holder drives");
        }
    }
});
