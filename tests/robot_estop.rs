//! The e-stop pressed at the bedside belongs to the bedside, end to end over real UDP with real
//! str0m peers: a robot reports its own e-stop in telemetry, and a hostile doctor who holds the
//! lease clears the e-stop and drives through the real `control` channel. The robot must
//! receive no drive frame (only the SFU's stops), the room must stay latched and the doctor's
//! clear be refused; once the robot releases its own e-stop, the doctor drives again.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bedside_proto::{ControlFrame, FrameKind, Role};
use bedside_sfu::client::media::OPUS_SILENCE;
use bedside_sfu::client::{ClientEvent, Endpoint};
use common::*;
use str0m::format::Codec;

/// A robot that can send `events` (telemetry) while it runs, publishing Opus silence so that
/// the SFU hears it, and recording the control frames it receives.
/// Control frames as the robot received them: when, and the bytes.
type ControlLog = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

struct Robot {
    control: ControlLog,
    outbox: tokio::sync::mpsc::UnboundedSender<String>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Robot {
    async fn start(sfu: &TestSfu, room: &str) -> Robot {
        let token = sfu.token(room, Role::Robot, "robot");
        let mut client = sfu.connect(Endpoint::Whip, room, &token).await;
        let control: ControlLog = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (outbox, mut inbox) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (log, s) = (control.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let opus = client.pt_for(Codec::Opus).expect("opus negotiated").pt();
            let (mut seq, mut ts) = (1u64, 0u32);
            while !s.load(Ordering::SeqCst) {
                while let Ok(json) = inbox.try_recv() {
                    if !client.send_event(&json) {
                        return Err("the robot's events channel refused a message".into());
                    }
                }
                client.send_packet(false, opus, seq, ts, false, OPUS_SILENCE.to_vec());
                seq += 1;
                ts = ts.wrapping_add(960);
                let deadline = Instant::now() + Duration::from_millis(20);
                while let Some(ev) = client
                    .next_event(deadline)
                    .await
                    .map_err(|e| format!("robot connection: {e}"))?
                {
                    if let ClientEvent::Control(b) = ev {
                        log.lock().unwrap().push((Instant::now(), b));
                    }
                }
            }
            client
                .close()
                .await
                .map_err(|e| format!("robot DELETE: {e}"))
        });
        Robot {
            control,
            outbox,
            stop,
            task,
        }
    }

    /// Telemetry saying whether the robot's own e-stop is pressed.
    fn report_estop(&self, pressed: bool) {
        self.outbox
            .send(format!(r#"{{"type":"telemetry","estop":{pressed}}}"#))
            .expect("the robot is running");
    }

    /// Every control frame received from the `from`th on, decoded.
    fn frames_from(&self, from: usize) -> Vec<ControlFrame> {
        self.control.lock().unwrap()[from..]
            .iter()
            .filter_map(|(_, b)| ControlFrame::decode(b).ok())
            .collect()
    }

    fn received(&self) -> usize {
        self.control.lock().unwrap().len()
    }

    /// How many Stop frames of `epoch` arrived, and how many arrived at or after `since`.
    fn stops(&self, epoch: u64, since: Instant) -> (usize, usize) {
        let log = self.control.lock().unwrap();
        let stops: Vec<(Instant, ControlFrame)> = log
            .iter()
            .filter_map(|(t, b)| ControlFrame::decode(b).ok().map(|f| (*t, f)))
            .filter(|(_, f)| f.kind == FrameKind::Stop)
            .collect();
        (
            stops
                .iter()
                .filter(|(_, f)| u64::from(f.epoch) == epoch)
                .count(),
            stops.iter().filter(|(t, _)| *t >= since).count(),
        )
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        match self.task.await {
            Ok(r) => r.expect("robot ran cleanly"),
            Err(e) => panic!("robot task: {e}"),
        }
    }
}

/// The last `estop` event the viewer heard: (latched, robot).
fn last_estop(v: &ViewerHandle) -> Option<(bool, bool)> {
    v.events()
        .iter()
        .rev()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .find(|e| e["type"] == "estop")
        .map(|e| (e["latched"] == true, e["robot"] == true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_cannot_clear_or_drive_through_the_robots_own_estop() {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = Robot::start(&sfu, &room).await;
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doc")).await;
    let epoch = take_lease(&doctor).await;
    // Taking the lease sends a stop and repeats it twice (`STOP_REPEATS`, up to 60 ms later):
    // once all three are in, any later stop can only come from the robot's own report.
    let granted = Instant::now();
    let stops_of_grant = 1 + bedside_sfu::room::STOP_REPEATS.len();
    assert!(
        wait_until(Duration::from_secs(5), || robot.stops(epoch, granted).0
            >= stops_of_grant)
        .await,
        "the lease grant's {stops_of_grant} stops reached the robot: {:?}",
        robot.frames_from(0)
    );

    // The bedside presses its own e-stop.
    let before = robot.received();
    let reported = Instant::now();
    robot.report_estop(true);
    assert!(
        doctor
            .wait_event(Duration::from_secs(5), |e| e["type"] == "estop"
                && e["latched"] == true
                && e["robot"] == true)
            .await
            .is_some(),
        "the room shows the robot's e-stop: {:?}",
        doctor.events()
    );

    // The doctor holding the lease tries to clear it, then drives anyway.
    doctor.send_event(r#"{"type":"estop_clear"}"#);
    let refusal = doctor
        .wait_event(Duration::from_secs(5), |e| {
            e["type"] == "error" && e["code"] == "robot_estop"
        })
        .await;
    assert!(
        refusal.is_some(),
        "the doctor's clear is refused: {:?}",
        doctor.events()
    );
    drive_into_the_latch(&sfu, &doctor).await;
    let seen = robot.frames_from(before);
    assert!(
        wait_until(Duration::from_secs(5), || robot.stops(epoch, reported).1
            > 0)
        .await,
        "the robot's own e-stop report made the room send it a stop: {seen:?}"
    );
    assert!(
        seen.iter().all(|f| f.kind == FrameKind::Stop),
        "the robot received only stops, no drive frame: {seen:?}"
    );
    assert_eq!(
        last_estop(&doctor),
        Some((true, true)),
        "the room stays latched: {:?}",
        doctor.events()
    );

    // Only the bedside releases it; then the doctor clears (nothing of the doctor's is
    // latched) and drives.
    robot.report_estop(false);
    assert!(
        doctor
            .wait_event(Duration::from_secs(5), |e| e["type"] == "estop"
                && e["latched"] == false)
            .await
            .is_some(),
        "the robot's release clears the room: {:?}",
        doctor.events()
    );
    doctor.send_event(r#"{"type":"estop_clear"}"#);
    let mark = robot.received();
    drive(&doctor, 777, 100, 25).await;
    assert!(
        wait_until(Duration::from_secs(5), || robot
            .frames_from(mark)
            .iter()
            .filter(|f| f.kind == FrameKind::Drive && f.linear_x == 777)
            .count()
            >= 20)
        .await,
        "the doctor drives again: {:?}",
        robot.frames_from(mark)
    );
    doctor.stop().await;
    robot.stop().await;
}

/// The room latch outlives the robot's session: a robot that reconnects (a Wi-Fi roam, a
/// reboot) is told at once that the room is latched, so that it holds still by its own hand too,
/// and the doctor's drive frames still do not reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_robot_is_told_the_room_is_latched() {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot", 1).await;
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doc")).await;
    take_lease(&doctor).await;
    doctor.send_event(r#"{"type":"estop"}"#);
    assert!(
        doctor
            .wait_event(Duration::from_secs(5), |e| e["type"] == "estop"
                && e["latched"] == true)
            .await
            .is_some(),
        "the doctor's e-stop latches the room: {:?}",
        doctor.events()
    );

    // The robot's session ends; the room (the doctor is still in it) keeps the latch.
    let gone = robot.session_id.clone();
    robot.stop().await;
    assert!(
        doctor
            .wait_event(Duration::from_secs(5), |e| e["type"] == "left"
                && e["id"] == gone.as_str())
            .await
            .is_some(),
        "the room says the robot left: {:?}",
        doctor.events()
    );

    let again = sfu.start_robot(&room, "robot", 5000).await;
    assert_ne!(again.session_id, gone, "a new session");
    let latched = || {
        again
            .log
            .events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            .any(|e| e["type"] == "estop" && e["latched"] == true)
    };
    assert!(
        wait_until(Duration::from_secs(5), latched).await,
        "the reconnected robot hears the room is latched: {:?}",
        again.log.events.lock().unwrap()
    );

    // The doctor still holds the lease and drives: every frame reaches the SFU and is dropped
    // there, none reaches the robot.
    drive_into_the_latch(&sfu, &doctor).await;
    let drives: Vec<_> = robot_frames(&again)
        .into_iter()
        .filter(|(_, f)| f.kind == FrameKind::Drive)
        .collect();
    assert!(
        drives.is_empty(),
        "no drive frame reached the robot: {drives:?}"
    );
    doctor.stop().await;
    again.stop().await;
}

/// The doctor sends 25 drive frames into a latched room: every one reaches the SFU and is
/// dropped there as latched (at least 20 counted: the channel is unreliable), not lost on the
/// way.
async fn drive_into_the_latch(sfu: &TestSfu, doctor: &ViewerHandle) {
    let dropped = "bedside_control_frames_dropped_total{reason=\"estop_latched\"}";
    let dropped_before = sfu.metric(dropped);
    drive(doctor, 555, 1, 25).await;
    assert!(
        wait_until(Duration::from_secs(5), || sfu.metric(dropped)
            >= dropped_before + 20.0)
        .await,
        "drive frames dropped as latched: {}",
        sfu.metric(dropped) - dropped_before
    );
}
