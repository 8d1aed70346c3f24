//! Loss on the driver's link: with 5 %, 20 % and 50 % of the driver's datagrams dropped at
//! random both ways (nftables `numgen random`), the robot agent never obeys a stale or
//! out-of-order joystick frame, stops by its deadman when the frames stop, and an e-stop still
//! latches (it travels on the reliable `events` channel, which SCTP retransmits).
//!
//! Real parts: the SFU in-process, the `bedside robot` agent binary, a str0m driver from its own
//! address, nftables in a network namespace of the test's own. Each phase first shows the loss
//! is in effect: the share of frames the robot obeyed is near 1 - loss. The figures are printed
//! (`docs/reliability.md` records a run).

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bedside_proto::{ControlFrame, Role};
use bedside_sfu::client::{Endpoint, TransportKind};
use bedside_sfu::SfuConfig;
use common::agent::{robot_agent, Motors};
use common::*;

const ROBOT_IP: &str = "127.0.0.2";
const DRIVER_IP: &str = "127.0.0.3";
/// Frames per phase, at 50 Hz.
const FRAMES: u32 = 250;
const DEADMAN_MS: u64 = 300;

/// Drop `percent` % of the datagrams between the driver and the SFU's media port, both ways.
fn loss(ns: &str, sfu_port: u16, percent: u32) {
    netns::nft(
        ns,
        &format!(
            "table inet loss {{\n chain input {{\n type filter hook input priority 0;\n \
             ip saddr {DRIVER_IP} udp dport {sfu_port} numgen random mod 100 < {percent} drop\n \
             ip daddr {DRIVER_IP} udp sport {sfu_port} numgen random mod 100 < {percent} drop\n \
             }}\n}}\n"
        ),
    );
}

#[test]
fn under_loss_the_robot_obeys_only_newer_frames_stops_by_itself_and_still_latches_the_estop() {
    let ns = netns::NetNs::new("loss");
    let ns_name = ns.name.clone();
    let agent_cmd = ns.command(env!("CARGO_BIN_EXE_bedside"));
    ns.run(move || async move {
        let sfu = TestSfu::start_with(SfuConfig::default()).await;
        let sfu_port = sfu.sfu.media_addrs()[0].port();
        let room = room();
        let commands = Motors::bind().await;
        let token = sfu.token(&room, Role::Robot, "robot");
        let _agent = robot_agent(agent_cmd, &sfu.base, &room, &token)
            .args(commands.sink_args())
            .args(["--local-ip", ROBOT_IP, "--deadman-ms", &DEADMAN_MS.to_string()])
            .spawn()
            .expect("bedside robot starts");
        let driver_ip: IpAddr = DRIVER_IP.parse().unwrap();
        let token = sfu.token(&room, Role::Doctor, "driver");
        let client = sfu
            .connect_via(Endpoint::Whep, &room, &token, driver_ip, TransportKind::Udp, Duration::from_secs(10))
            .await
            .expect("the driver connects");
        let driver = spawn_viewer_client(client, Instant::now());
        assert!(
            wait_until(Duration::from_secs(10), || driver.video().len() > 20).await,
            "the agent publishes"
        );
        take_lease(&driver).await;

        let mut seq = 0u32;
        let mut figures = Vec::new();
        for (phase, percent) in [5u32, 20, 50].into_iter().enumerate() {
            loss(&ns_name, sfu_port, percent);
            // Drive: the marker (linear_x) of frame k of this phase is base + k, so the robot's
            // obeyed markers must only ever rise.
            let base = 1_000 * (phase as i16 + 1);
            let first_seq = seq + 1;
            let from = commands.len();
            for k in 0..FRAMES {
                seq += 1;
                let f = ControlFrame::drive(seq, seq.wrapping_mul(20), base + k as i16, 0, 0);
                driver.send_control(f.encode().to_vec());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // The frames stop: the deadman must stop the robot by itself.
            wait_until(Duration::from_secs(3), || {
                commands.since(from)
                    .iter()
                    .any(|(_, c)| c["reason"] == "deadman")
            })
            .await;
            let got = commands.since(from);
            let markers: Vec<i64> = got
                .iter()
                .filter(|(_, c)| c["reason"] == "frame")
                .filter_map(|(_, c)| c["linear_x"].as_i64())
                .filter(|m| *m >= i64::from(base))
                .collect();
            assert!(
                markers.windows(2).all(|w| w[1] > w[0]),
                "{percent} % loss: the robot obeyed a stale or out-of-order frame: {markers:?}"
            );
            let share = markers.len() as f64 / f64::from(FRAMES);
            // The loss is in effect: frames were lost, and from 20 % on clearly more than
            // half the loss shows (at 5 % the share is too near 1 for a tighter bound). And the
            // path still works: a frame is lost with its own datagram or, the loss being both
            // ways, when a lost acknowledgement stalls the driver's SCTP sender past the
            // frame's moment (0.62 was seen at 20 %), so at least (1 - loss)^2 - 0.1 get
            // through. The figures are printed; `docs/reliability.md` records them.
            let p = f64::from(percent) / 100.0;
            let most = if percent >= 20 { 1.0 - p / 2.0 } else { 1.0 };
            let least = (1.0 - p) * (1.0 - p) - 0.1;
            assert!(
                markers.len() < FRAMES as usize && share <= most,
                "{percent} % loss: obeyed {share:.2} of the frames: the loss is not in effect \
                 (at most {most:.2} expected)"
            );
            assert!(
                share >= least,
                "{percent} % loss: obeyed only {share:.2} of the frames (at least {least:.2})"
            );
            let stopped = got
                .iter()
                .find(|(_, c)| c["reason"] == "deadman")
                .map(|(t, _)| *t)
                .unwrap_or_else(|| panic!("{percent} % loss: no deadman stop: {got:?}"));
            let last_obeyed = got
                .iter()
                .filter(|(_, c)| c["reason"] == "frame")
                .map(|(t, _)| *t)
                .next_back()
                .expect("frames obeyed");
            let deadman_after = stopped.duration_since(last_obeyed);
            assert!(
                deadman_after < Duration::from_millis(DEADMAN_MS + 700),
                "{percent} % loss: stopped {deadman_after:?} after the last obeyed frame"
            );

            // An e-stop on the lossy link still latches at the robot. The driver does what the
            // console does: an e-stop not yet confirmed is sent again every second. On one
            // message, SCTP's retransmission timer backs off (doubling) after each loss, and at
            // 50 % loss both ways a single send was once seen to wait past 10 s; new sends bring
            // gap reports that make the sender retransmit the lost one at once.
            let pressed = Instant::now();
            let from = commands.len();
            let mut latched = false;
            while !latched && pressed.elapsed() < Duration::from_secs(20) {
                driver.send_event(r#"{"type":"estop"}"#);
                latched = wait_until(Duration::from_secs(1), || {
                    commands.since(from).iter().any(|(_, c)| c["reason"] == "estop")
                })
                .await;
            }
            let got = commands.since(from);
            assert!(
                latched,
                "{percent} % loss: the e-stop never reached the robot: {got:?}"
            );
            let estop_at = got
                .iter()
                .find(|(_, c)| c["reason"] == "estop")
                .map(|(t, _)| *t)
                .expect("an e-stop command");
            let estop_after = estop_at.duration_since(pressed);
            let clears = || {
                driver
                    .events()
                    .iter()
                    .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
                    .filter(|e| e["type"] == "estop" && e["latched"] == false)
                    .count()
            };
            // The clear, like the press, is sent again every second until the room confirms it:
            // one message alone can sit in SCTP's backed-off retransmission timer past 10 s at
            // 50 % loss (seen once in a suite run). A second clear of a cleared room is a no-op.
            let clearing = Instant::now();
            let mut cleared = false;
            while !cleared && clearing.elapsed() < Duration::from_secs(20) {
                driver.send_event(r#"{"type":"estop_clear"}"#);
                cleared = wait_until(Duration::from_secs(1), || clears() > phase).await;
            }
            assert!(cleared, "{percent} % loss: the e-stop clears");
            // The next phase starts from a robot that is told the latch is gone.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let longest_gap = longest_loss(&markers);
            println!(
                "loss {percent:>2} %: obeyed {:>3}/{FRAMES} frames ({share:.2}), seq {first_seq}..{seq}, \
                 longest run of lost frames {longest_gap}, deadman stop {:.0} ms after the last \
                 obeyed frame, e-stop latched at the robot {:.0} ms after it was pressed",
                markers.len(),
                deadman_after.as_secs_f64() * 1e3,
                estop_after.as_secs_f64() * 1e3,
            );
            figures.push((percent, share));
            netns::nft(&ns_name, "delete table inet loss\n");
        }
        assert_eq!(figures.len(), 3);
        driver.stop().await;
    });
}

/// The longest run of consecutive markers missing between obeyed ones.
fn longest_loss(markers: &[i64]) -> i64 {
    markers
        .windows(2)
        .map(|w| w[1] - w[0] - 1)
        .max()
        .unwrap_or(0)
}
