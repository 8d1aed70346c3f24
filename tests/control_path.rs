//! The control path end to end: only the lease holder's joystick frames reach the robot, lease
//! changes stop the robot first, e-stop latches, and the robot agent (the real `bedside robot`
//! binary) stops by itself when its driver vanishes.

mod common;

use std::time::{Duration, Instant};

use bedside_proto::{ControlFrame, FrameKind, Role};
use common::agent::{agent_binary, robot_agent, Motors};
use common::*;
use rand::RngCore;

fn sent_by(marker: i16) -> impl Fn(&ControlFrame) -> bool {
    move |f| f.kind == FrameKind::Drive && f.linear_x == marker
}

struct Room {
    sfu: TestSfu,
    robot: RobotHandle,
    doctor: ViewerHandle,
    consultants: Vec<ViewerHandle>,
    observers: Vec<ViewerHandle>,
}

async fn room_with_everyone() -> Room {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot", 1).await;
    // The booking's doctor may drive; consultants are doctors without `can_control`.
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doctor")).await;
    let mut consultants = Vec::new();
    for i in 0..2 {
        let mut c = bedside_proto::Claims::new(format!("consultant-{i}"), &room, Role::Doctor, 600);
        c.can_control = false;
        consultants.push(spawn_viewer(&sfu, &room, &sfu.sign(&c)).await);
    }
    let mut observers = Vec::new();
    for i in 0..2 {
        let t = sfu.token(&room, Role::Observer, &format!("student-{i}"));
        observers.push(spawn_viewer(&sfu, &room, &t).await);
    }
    Room {
        sfu,
        robot,
        doctor,
        consultants,
        observers,
    }
}

impl Room {
    async fn stop(self) {
        for v in self.consultants.into_iter().chain(self.observers) {
            v.stop().await;
        }
        self.doctor.stop().await;
        self.robot.stop().await;
    }

    fn dropped_total(&self) -> f64 {
        let text = self.sfu.sfu.metrics().render();
        text.lines()
            .filter(|l| l.starts_with("bedside_control_frames_dropped_total{"))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_drives() {
    let r = room_with_everyone().await;
    let granted = take_lease(&r.doctor).await as u32;
    // A consultant cannot take the lease while the doctor holds it: it can only ask.
    r.consultants[0].send_event(r#"{"type":"request_lease"}"#);
    let asked = r.consultants[0].session_id.clone();
    assert!(r
        .doctor
        .wait_event(Duration::from_secs(2), |e| e["type"] == "lease_requested"
            && e["from"] == asked.as_str())
        .await
        .is_some());
    let dropped_before = r.dropped_total();

    // 10,000 frames from everybody but the holder: well-formed, forged epochs, stop kinds and
    // garbage, 2,500 from each, paced so the senders' own SCTP buffers never overflow. The
    // holder drives at 50 Hz all the while: the flood must not cost it its frames.
    let senders: Vec<&ViewerHandle> = r.consultants.iter().chain(r.observers.iter()).collect();
    let flood = async {
        let mut rng = rand::rng();
        for batch in 0..25u32 {
            for v in &senders {
                for i in 0..100u32 {
                    let seq = batch * 100 + i + 1;
                    let frame = match i % 4 {
                        0 => ControlFrame::drive(seq, 0, 777, 0, 0).encode().to_vec(),
                        1 => {
                            let mut f = ControlFrame::drive(seq, 0, 777, 0, 0);
                            f.epoch = rng.next_u32();
                            f.encode().to_vec()
                        }
                        2 => ControlFrame::stop(1, seq, 0).encode().to_vec(),
                        _ => {
                            let mut g = vec![0u8; 1 + (rng.next_u32() % 80) as usize];
                            rng.fill_bytes(&mut g);
                            g
                        }
                    };
                    v.send_control(frame);
                }
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    };
    let flood_started = Instant::now();
    tokio::join!(flood, drive(&r.doctor, 1234, 1, 50));
    assert!(
        flood_started.elapsed() >= Duration::from_millis(25 * 60),
        "the holder drove while the flood ran"
    );
    // Wait for the holder's frames and the drops to be counted (the flood's tail is in flight).
    wait_until(Duration::from_secs(5), || {
        robot_frames(&r.robot)
            .iter()
            .filter(|(_, f)| sent_by(1234)(f))
            .count()
            >= 48
            && r.dropped_total() - dropped_before >= 9_900.0
    })
    .await;

    let frames = robot_frames(&r.robot);
    let from_holder = frames.iter().filter(|(_, f)| sent_by(1234)(f)).count();
    let intruders = frames
        .iter()
        .filter(|(_, f)| f.kind == FrameKind::Drive && f.linear_x != 1234)
        .count();
    assert_eq!(intruders, 0, "no frame from a non-holder reached the robot");
    assert!(
        from_holder >= 48,
        "holder's frames arrived: {from_holder}/50"
    );
    let dropped = r.dropped_total() - dropped_before;
    assert!(
        dropped >= 9_900.0,
        "non-holder frames are counted as drops: {dropped}"
    );
    let observer_drops = r
        .sfu
        .metric("bedside_control_frames_dropped_total{reason=\"observer\"}");
    assert!(
        observer_drops >= 4_900.0,
        "observer drops: {observer_drops}"
    );
    // Every forwarded frame carries the epoch the holder was granted, whatever it wrote.
    let epochs: Vec<u32> = frames
        .iter()
        .filter(|(_, f)| sent_by(1234)(f))
        .map(|(_, f)| f.epoch)
        .collect();
    assert!(
        epochs.iter().all(|e| *e == granted),
        "granted {granted}, got {epochs:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_stops_the_robot_first() {
    let r = room_with_everyone().await;
    let first_epoch = take_lease(&r.doctor).await;
    drive(&r.doctor, 1111, 1, 20).await;

    let to = r.consultants[0].session_id.clone();
    r.doctor
        .send_event(&format!(r#"{{"type":"handoff","to":"{to}"}}"#));
    let ev = r.consultants[0]
        .wait_event(Duration::from_secs(2), |e| {
            e["type"] == "lease" && e["holder"] == to.as_str()
        })
        .await
        .expect("handoff announced to the room");
    assert_eq!(ev["reason"], "handoff");
    let new_epoch = ev["epoch"].as_u64().unwrap();
    assert!(new_epoch > first_epoch);
    // The old holder keeps pushing; the new one drives.
    let old = drive(&r.doctor, 1111, 100, 20);
    let new = drive(&r.consultants[0], 2222, 1, 20);
    tokio::join!(old, new);
    // Wait for what was sent to have arrived (or been counted as dropped), not a fixed time.
    wait_until(Duration::from_secs(5), || {
        robot_frames(&r.robot)
            .iter()
            .filter(|(_, f)| sent_by(2222)(f))
            .count()
            >= 18
            && r.sfu
                .metric("bedside_control_frames_dropped_total{reason=\"not_holder\"}")
                >= 18.0
    })
    .await;

    let frames = robot_frames(&r.robot);
    let stop_at = frames
        .iter()
        .position(|(_, f)| f.kind == FrameKind::Stop && f.epoch as u64 == new_epoch)
        .expect("a stop frame for the new epoch");
    assert!(
        frames[..stop_at].iter().all(|(_, f)| !sent_by(2222)(f)),
        "the stop comes before any of the new holder's frames"
    );
    let after = &frames[stop_at + 1..];
    assert!(after.iter().filter(|(_, f)| sent_by(2222)(f)).count() >= 18);
    assert!(
        after.iter().all(|(_, f)| !sent_by(1111)(f)),
        "the old holder's late frames are dropped"
    );
    assert!(
        r.sfu
            .metric("bedside_control_frames_dropped_total{reason=\"not_holder\"}")
            >= 18.0
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estop_from_a_consultant_latches_until_the_holder_clears_it() {
    let r = room_with_everyone().await;
    take_lease(&r.doctor).await;
    // Observers may not press it.
    r.observers[0].send_event(r#"{"type":"estop"}"#);
    assert!(r.observers[0]
        .wait_event(Duration::from_secs(2), |e| e["type"] == "error"
            && e["code"] == "forbidden")
        .await
        .is_some());

    r.consultants[1].send_event(r#"{"type":"estop"}"#);
    let by = r.consultants[1].session_id.clone();
    assert!(r
        .doctor
        .wait_event(Duration::from_secs(2), |e| e["type"] == "estop"
            && e["latched"] == true
            && e["by"] == by.as_str())
        .await
        .is_some());
    drive(&r.doctor, 3333, 1, 10).await;
    // A consultant cannot clear it.
    r.consultants[1].send_event(r#"{"type":"estop_clear"}"#);
    assert!(r.consultants[1]
        .wait_event(Duration::from_secs(3), |e| e["type"] == "error"
            && e["code"] == "not_holder")
        .await
        .is_some());
    drive(&r.doctor, 3333, 11, 10).await;
    // The SFU has seen (and dropped) the frames before we look at what the robot got.
    wait_until(Duration::from_secs(5), || {
        r.sfu
            .metric("bedside_control_frames_dropped_total{reason=\"estop_latched\"}")
            >= 18.0
    })
    .await;
    let moving = robot_frames(&r.robot)
        .iter()
        .filter(|(_, f)| sent_by(3333)(f))
        .count();
    assert_eq!(moving, 0, "no motion frame reaches the robot while latched");
    assert!(
        r.sfu
            .metric("bedside_control_frames_dropped_total{reason=\"estop_latched\"}")
            >= 18.0
    );

    r.doctor.send_event(r#"{"type":"estop_clear"}"#);
    assert!(r.consultants[0]
        .wait_event(Duration::from_secs(2), |e| e["type"] == "estop"
            && e["latched"] == false)
        .await
        .is_some());
    drive(&r.doctor, 3333, 100, 10).await;
    wait_until(Duration::from_secs(5), || {
        robot_frames(&r.robot)
            .iter()
            .filter(|(_, f)| sent_by(3333)(f))
            .count()
            >= 9
    })
    .await;
    let moving = robot_frames(&r.robot)
        .iter()
        .filter(|(_, f)| sent_by(3333)(f))
        .count();
    assert!(
        moving >= 9,
        "driving resumes after the holder clears: {moving}"
    );
    r.stop().await;
}

/// The real robot agent binary, its drive commands read from a UDP sink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robot_agent_stops_when_the_driver_vanishes() {
    let sfu = TestSfu::start().await;
    let room = room();
    let motors = Motors::bind().await;
    let token = sfu.token(&room, Role::Robot, "robot");
    let mut agent = robot_agent(agent_binary(), &sfu.base, &room, &token)
        .args(motors.sink_args())
        .args(["--max-attempts", "1"])
        .spawn()
        .expect("bedside robot starts");

    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doctor")).await;
    let observer = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Observer, "s")).await;
    // The agent publishes real video.
    let deadline = Instant::now() + Duration::from_secs(5);
    while doctor.video().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !doctor.video().is_empty(),
        "the agent's video reaches viewers"
    );
    take_lease(&doctor).await;
    drive(&doctor, 500, 1, 25).await;
    let holder = doctor.session_id.clone();
    doctor.vanish().await;

    // Read what the agent told its motors, once something followed its last drive command.
    let last_drive = |c: &[serde_json::Value]| {
        c.iter()
            .rposition(|c| c["reason"] == "frame" && c["linear_x"] == 500)
    };
    wait_until(Duration::from_secs(5), || {
        let c = motors.all();
        last_drive(&c).is_some_and(|i| c.len() > i + 1)
    })
    .await;
    let commands = motors.all();
    let last_drive = last_drive(&commands).expect("the agent drove");
    let stop = commands
        .get(last_drive + 1)
        .unwrap_or_else(|| panic!("a command followed the last drive: {commands:?}"));
    assert_eq!(
        stop["reason"], "deadman",
        "then stopped by its watchdog: {commands:?}"
    );
    assert_eq!(stop["linear_x"], 0);
    let gap = stop["t_ms"].as_u64().unwrap() - commands[last_drive]["t_ms"].as_u64().unwrap();
    assert!(gap <= 350, "stopped {gap} ms after the last frame");

    // The SFU notices the vanished holder, revokes the lease and tells the room.
    let ev = observer
        .wait_event(Duration::from_secs(40), |e| {
            e["type"] == "lease" && e["holder"].is_null() && e["reason"] == "disconnected"
        })
        .await;
    assert!(ev.is_some(), "lease revoked after {holder} vanished");
    observer.stop().await;
    let _ = agent.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_ends_with_the_booking() {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot", 1).await;
    // The booking ends a few seconds from now: the token's `exp` says so. (Long enough for a
    // busy machine to connect and take the lease first.)
    let mut claims = bedside_proto::Claims::new("doctor", &room, Role::Doctor, 6);
    claims.can_control = true;
    let doctor = spawn_viewer(&sfu, &room, &sfu.sign(&claims)).await;
    let epoch = take_lease(&doctor).await;
    let ev = doctor
        .wait_event(Duration::from_secs(15), |e| {
            e["type"] == "lease" && e["reason"] == "expired"
        })
        .await
        .unwrap_or_else(|| panic!("lease revoked at the token's expiry: {:?}", doctor.events()));
    assert!(ev["holder"].is_null());
    assert!(ev["epoch"].as_u64().unwrap() > epoch);
    let stopped = || {
        robot_frames(&robot)
            .iter()
            .any(|(_, f)| f.kind == FrameKind::Stop && f.epoch as u64 > epoch)
    };
    assert!(wait_until(Duration::from_secs(3), stopped).await);
    let stops = robot_frames(&robot)
        .iter()
        .filter(|(_, f)| f.kind == FrameKind::Stop && f.epoch as u64 > epoch)
        .count();
    assert_eq!(stops, 1, "the robot was told to stop");
    doctor.stop().await;
    robot.stop().await;
}

/// The robot agent loses its server in the middle of a drive (the media node is killed): the
/// motors stop within the deadman, and nothing moves them again while the server is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robot_agent_stops_when_its_server_dies() {
    let keys = bedside_proto::KeyPair::generate().unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_bedside"))
        .args(["serve", "--data-dir"])
        .arg(data.path())
        .args(["--http", &format!("127.0.0.1:{port}"), "--udp-port", "0"])
        .args(["--workers", "1", "--ice-tcp-port", "0"])
        .env("BEDSIDE_JWT_PRIVATE_KEY_PEM", keys.to_pem())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("bedside serve starts");
    let http = reqwest::Client::new();
    let up = async {
        for _ in 0..300 {
            if http.get(format!("{base}/metrics")).send().await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(up.await, "the server answers");
    let room = room();
    let token = |role: Role, sub: &str| {
        let mut c = bedside_proto::Claims::new(sub, &room, role, 600);
        c.can_control = role == Role::Doctor;
        keys.signer().sign(&c).unwrap()
    };
    let motors = Motors::bind().await;
    let mut agent = robot_agent(agent_binary(), &base, &room, &token(Role::Robot, "robot"))
        .args(motors.sink_args())
        .spawn()
        .expect("bedside robot starts");
    let doctor = bedside_sfu::client::WebRtcClient::connect(
        &base,
        bedside_sfu::client::Endpoint::Whep,
        &room,
        &token(Role::Doctor, "doctor"),
        LOCALHOST,
    )
    .await
    .expect("the doctor joins");
    let doctor = spawn_viewer_client_ready(doctor).await;
    assert!(wait_until(Duration::from_secs(10), || !doctor.video().is_empty()).await);
    take_lease(&doctor).await;

    // Drive until the server dies, and a while after.
    let killed = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let driving = drive(&doctor, 700, 1, 100);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        server.start_kill().expect("kill -9");
        *killed.lock().unwrap() = Some(Instant::now());
    };
    // Six seconds of what the agent told its motors: before, at and well after the kill.
    let watch = tokio::time::sleep(Duration::from_secs(6));
    tokio::join!(driving, kill, watch);
    let commands = motors.all();
    assert!(killed.lock().unwrap().is_some());
    let last_drive = commands
        .iter()
        .rposition(|c| c["linear_x"] == 700)
        .unwrap_or_else(|| panic!("the agent drove: {commands:?}"));
    let stop = commands
        .get(last_drive + 1)
        .unwrap_or_else(|| panic!("a stop followed the last drive: {commands:?}"));
    assert_eq!(stop["linear_x"], 0, "{commands:?}");
    let gap = stop["t_ms"].as_u64().unwrap() - commands[last_drive]["t_ms"].as_u64().unwrap();
    assert!(gap <= 350, "stopped {gap} ms after the last frame");
    assert!(
        commands[last_drive + 1..]
            .iter()
            .all(|c| c["linear_x"] == 0 && c["angular_z"] == 0),
        "nothing moved it after: {commands:?}"
    );
    let _ = doctor.finish().await;
    let _ = agent.kill().await;
}
