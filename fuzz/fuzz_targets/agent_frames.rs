//! The robot agent's frame handling (`bedside robot`'s watchdog): arbitrary control-channel
//! bytes, lease events and clock steps. Never a panic, and the safety rules hold for every
//! input: a latched e-stop never lets a moving command out, no obeyed frame has an older epoch
//! or a repeated/older sequence number than one obeyed before it in the same epoch.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bedside::agent::watchdog::Watchdog;
use bedside_proto::ControlFrame;
use libfuzzer_sys::fuzz_target;

const DEADMAN: Duration = Duration::from_millis(300);

#[derive(Arbitrary, Debug)]
enum Step {
    Bytes(Vec<u8>),
    /// A well-formed drive frame (so the fuzzer gets past the decoder often).
    Drive { epoch: u8, seq: u16, x: i16, z: i16 },
    Stop { epoch: u8, seq: u16 },
    Lease(u8),
    Estop(bool),
    Wait(u16),
}

fuzz_target!(|steps: Vec<Step>| {
    let mut now = Instant::now();
    let mut w = Watchdog::new(DEADMAN);
    let mut last: Option<(u32, u32)> = None;
    // When the last obeyed frame that moves the robot arrived.
    let mut moving_since: Option<Instant> = None;
    for step in steps.into_iter().take(128) {
        let bytes = match step {
            Step::Bytes(b) => b,
            Step::Drive { epoch, seq, x, z } => {
                let mut f = ControlFrame::drive(u32::from(seq), 0, x, 0, z);
                f.epoch = u32::from(epoch);
                f.encode().to_vec()
            }
            Step::Stop { epoch, seq } => ControlFrame::stop(u32::from(epoch), u32::from(seq), 0)
                .encode()
                .to_vec(),
            Step::Lease(epoch) => {
                if let Some(d) = w.on_lease(u32::from(epoch)) {
                    assert!(d.is_still(), "a lease change stops the robot");
                }
                continue;
            }
            Step::Estop(latched) => {
                if let Some(d) = w.on_estop(latched) {
                    assert!(d.is_still(), "an e-stop stops the robot");
                }
                continue;
            }
            Step::Wait(ms) => {
                now += Duration::from_millis(u64::from(ms));
                let _ = w.poll(now);
                if moving_since.is_some_and(|t| now.duration_since(t) >= DEADMAN) {
                    assert!(w.current().is_still(), "the deadman stopped it");
                }
                continue;
            }
        };
        let latched = w.estop_latched();
        if let Ok(Some(d)) = w.on_frame(&bytes, now) {
            if latched {
                assert!(d.is_still(), "nothing moves the robot while the e-stop is latched");
            }
            if !d.is_still() {
                let f = ControlFrame::decode(&bytes).expect("an obeyed frame decodes");
                if let Some((epoch, seq)) = last {
                    assert!(
                        f.epoch > epoch || (f.epoch == epoch && f.seq > seq),
                        "obeyed a stale frame"
                    );
                }
                last = Some((f.epoch, f.seq));
                moving_since = Some(now);
            } else {
                moving_since = None;
            }
        }
    }
});
