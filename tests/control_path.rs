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

    /// Control frames dropped for any reason.
    fn dropped_total(&self) -> f64 {
        metric_sum(
            &self.sfu.sfu.metrics().render(),
            "bedside_control_frames_dropped_total",
        )
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
        Instant::now()
    };
    let flood_started = Instant::now();
    let (flood_ended, ()) = tokio::join!(flood, drive(&r.doctor, 1234, 1, 50));
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
    // ...and they arrived while the flood ran, not after it had drained: the flood did not
    // hold the holder's frames back. (Both loops pace themselves by sleeping, so on a slow
    // machine the drive may outlast the flood a little: most, not all.)
    let during: Vec<Duration> = frames
        .iter()
        .filter(|(_, f)| sent_by(1234)(f))
        .map(|(t, _)| t.saturating_duration_since(flood_started))
        .collect();
    let flood_lasted = flood_ended - flood_started;
    let inside = during.iter().filter(|d| **d <= flood_lasted).count();
    assert!(
        inside >= 40,
        "{inside} of the holder's frames arrived during the {flood_lasted:?} flood: {during:?}"
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
    let epoch = take_lease(&r.doctor).await as u32;
    // The grant's own stop (and its two repeats, 30 and 60 ms later) reach the robot first, so
    // that a stop arriving after the press below is the e-stop's.
    let stops_for = |epoch: u32| {
        robot_frames(&r.robot)
            .iter()
            .filter(|(_, f)| f.kind == FrameKind::Stop && f.epoch == epoch)
            .map(|(t, _)| *t)
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(Duration::from_secs(3), || stops_for(epoch).len() >= 3).await,
        "the grant stopped the robot (three times): {:?}",
        stops_for(epoch)
    );
    // Observers may not press it.
    r.observers[0].send_event(r#"{"type":"estop"}"#);
    assert!(r.observers[0]
        .wait_event(Duration::from_secs(2), |e| e["type"] == "error"
            && e["code"] == "forbidden")
        .await
        .is_some());

    let pressed = Instant::now();
    r.consultants[1].send_event(r#"{"type":"estop"}"#);
    let by = r.consultants[1].session_id.clone();
    assert!(r
        .doctor
        .wait_event(Duration::from_secs(2), |e| e["type"] == "estop"
            && e["latched"] == true
            && e["by"] == by.as_str())
        .await
        .is_some());
    // The latch stops the robot at once, in the epoch of the lease it interrupts.
    assert!(
        wait_until(Duration::from_secs(2), || stops_for(epoch)
            .iter()
            .any(|t| *t > pressed))
        .await,
        "a stop frame for epoch {epoch} reached the robot after the e-stop: {:?}",
        robot_frames(&r.robot)
    );
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

/// A `bedside serve` process (API, SFU and web in one) on a free port, for tests that kill it.
struct Served {
    process: tokio::process::Child,
    base: String,
    keys: bedside_proto::KeyPair,
    _data: tempfile::TempDir,
}

impl Served {
    async fn start() -> Served {
        let keys = bedside_proto::KeyPair::generate().unwrap();
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let process = tokio::process::Command::new(env!("CARGO_BIN_EXE_bedside"))
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
        Served {
            process,
            base,
            keys,
            _data: data,
        }
    }

    fn token(&self, room: &str, role: Role, sub: &str) -> String {
        let mut c = bedside_proto::Claims::new(sub, room, role, 600);
        c.can_control = role == Role::Doctor;
        self.keys.signer().sign(&c).unwrap()
    }

    /// A doctor watching `room` (its video arrived) and holding the lease.
    async fn driver(&self, room: &str) -> ViewerHandle {
        let doctor = bedside_sfu::client::WebRtcClient::connect(
            &self.base,
            bedside_sfu::client::Endpoint::Whep,
            room,
            &self.token(room, Role::Doctor, "doctor"),
            LOCALHOST,
        )
        .await
        .expect("the doctor joins");
        let doctor = spawn_viewer_client_ready(doctor).await;
        assert!(wait_until(Duration::from_secs(10), || !doctor.video().is_empty()).await);
        take_lease(&doctor).await;
        doctor
    }
}

/// The robot agent loses its server in the middle of a drive (the media node is killed): the
/// motors stop within the deadman, and nothing moves them again while the server is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robot_agent_stops_when_its_server_dies() {
    let mut server = Served::start().await;
    let room = room();
    let motors = Motors::bind().await;
    let mut agent = robot_agent(
        agent_binary(),
        &server.base,
        &room,
        &server.token(&room, Role::Robot, "robot"),
    )
    .args(motors.sink_args())
    .spawn()
    .expect("bedside robot starts");
    let doctor = server.driver(&room).await;

    // Drive until the server dies, and a while after.
    let killed = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let driving = drive(&doctor, 700, 1, 100);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        server.process.start_kill().expect("kill -9");
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

/// A deadman far longer than any test: whatever stops the robot here is not the watchdog.
const NO_DEADMAN: [&str; 2] = ["--deadman-ms", "600000"];

/// How soon after its session ends the agent must have stopped the motors: the agent notices a
/// dead path within about a second (its pings go unanswered), then gives the session up.
const PROMPTLY: Duration = Duration::from_secs(5);

/// What the agent told its motors after its last drive command (marked `marker`): the command
/// that followed it, and when that arrived.
fn after_last_drive(motors: &Motors, marker: i64) -> Option<(Instant, serde_json::Value)> {
    let commands = motors.since(0);
    let last = commands
        .iter()
        .rposition(|(_, c)| c["reason"] == "frame" && c["linear_x"] == marker)?;
    commands.get(last + 1).cloned()
}

/// The agent's connection ends while the robot moves (the server is killed): it stops the
/// motors itself at once, with its own reason, not waiting for a (here endless) deadman.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robot_agent_stops_at_once_when_its_server_dies_whatever_its_deadman() {
    let mut server = Served::start().await;
    let room = room();
    let motors = Motors::bind().await;
    let mut agent = robot_agent(
        agent_binary(),
        &server.base,
        &room,
        &server.token(&room, Role::Robot, "robot"),
    )
    .args(motors.sink_args())
    .args(NO_DEADMAN)
    .spawn()
    .expect("bedside robot starts");
    let doctor = server.driver(&room).await;
    drive(&doctor, 710, 1, 25).await;
    assert!(
        motors
            .wait_for(0, Duration::from_secs(5), |c| c["linear_x"] == 710)
            .await
            .is_some(),
        "the agent drove: {:?}",
        motors.all()
    );
    // The robot keeps its last command (the deadman is ten minutes): it is moving.

    server.process.start_kill().expect("kill -9");
    let killed = Instant::now();
    assert!(
        wait_until(PROMPTLY + Duration::from_secs(5), || after_last_drive(
            &motors, 710
        )
        .is_some())
        .await,
        "the agent stopped after its server died: {:?}",
        motors.all()
    );
    let (at, stop) = after_last_drive(&motors, 710).expect("waited for");
    assert_eq!(
        (
            &stop["reason"],
            &stop["linear_x"],
            &stop["linear_y"],
            &stop["angular_z"]
        ),
        (
            &serde_json::json!("disconnected"),
            &0.into(),
            &0.into(),
            &0.into()
        ),
        "{:?}",
        motors.all()
    );
    let after = at.saturating_duration_since(killed);
    assert!(after <= PROMPTLY, "stopped {after:?} after the kill");
    let _ = doctor.finish().await;
    let _ = agent.kill().await;
}

/// The server ends the robot's session (its token ran out) while the robot moves: the agent's
/// session ends with an error (its ICE restart is refused: the session is gone) and the motors
/// stop at once, with reason `disconnected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robot_agent_stops_at_once_when_the_server_ends_its_session() {
    let sfu = TestSfu::start().await;
    let room = room();
    let motors = Motors::bind().await;
    // Long enough for a busy machine to connect, join a driver and drive first.
    let robot_claims = bedside_proto::Claims::new("robot", &room, Role::Robot, 12);
    let mut agent = robot_agent(agent_binary(), &sfu.base, &room, &sfu.sign(&robot_claims))
        .args(motors.sink_args())
        .args(NO_DEADMAN)
        .spawn()
        .expect("bedside robot starts");
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doctor")).await;
    assert!(wait_until(Duration::from_secs(10), || !doctor.video().is_empty()).await);
    take_lease(&doctor).await;
    drive(&doctor, 720, 1, 25).await;
    assert!(
        motors
            .wait_for(0, Duration::from_secs(5), |c| c["linear_x"] == 720)
            .await
            .is_some(),
        "the agent drove: {:?}",
        motors.all()
    );
    assert!(
        after_last_drive(&motors, 720).is_none(),
        "still moving before the token ran out: {:?}",
        motors.all()
    );

    let robot_gone = || sfu.sample("bedside_sessions{role=\"robot\"}") == Some(0.0);
    assert!(
        wait_until(Duration::from_secs(20), robot_gone).await,
        "the robot's session ended with its token"
    );
    let ended = Instant::now();
    assert!(
        wait_until(PROMPTLY + Duration::from_secs(5), || after_last_drive(
            &motors, 720
        )
        .is_some())
        .await,
        "the agent stopped after its session ended: {:?}",
        motors.all()
    );
    let (at, stop) = after_last_drive(&motors, 720).expect("waited for");
    assert_eq!(
        (&stop["reason"], &stop["linear_x"], &stop["angular_z"]),
        (&serde_json::json!("disconnected"), &0.into(), &0.into()),
        "{:?}",
        motors.all()
    );
    let after = at.saturating_duration_since(ended);
    assert!(
        after <= PROMPTLY,
        "stopped {after:?} after the session ended"
    );
    doctor.stop().await;
    let _ = agent.kill().await;
}

/// The stop frames (at the robot, for the lease's new epoch) of `r`'s lease changes since
/// `since`.
fn stops_since(robot: &RobotHandle, epoch: u64, since: Instant) -> usize {
    robot_frames(robot)
        .iter()
        .filter(|(t, f)| *t >= since && f.kind == FrameKind::Stop && u64::from(f.epoch) == epoch)
        .count()
}

/// The holder gives control up: the robot is told to stop, in the new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_stops_the_robot() {
    let r = room_with_everyone().await;
    let first = take_lease(&r.doctor).await;
    drive(&r.doctor, 4444, 1, 10).await;
    let released = Instant::now();
    r.doctor.send_event(r#"{"type":"release"}"#);
    let ev = r.observers[0]
        .wait_event(Duration::from_secs(3), |e| {
            e["type"] == "lease" && e["reason"] == "released"
        })
        .await
        .unwrap_or_else(|| panic!("the release is announced: {:?}", r.observers[0].events()));
    assert!(ev["holder"].is_null(), "{ev}");
    let epoch = ev["epoch"].as_u64().expect("epoch");
    assert!(epoch > first);
    assert!(
        wait_until(Duration::from_secs(3), || stops_since(
            &r.robot, epoch, released
        ) > 0)
        .await,
        "a stop frame for epoch {epoch} reached the robot: {:?}",
        robot_frames(&r.robot)
    );
    r.stop().await;
}

/// The holder vanishes (no goodbye): once its lease is suspended and the grace period is over,
/// the lease ends (`disconnected`) and the robot is told to stop in the new epoch, as well as
/// when the lease was suspended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_holder_stops_the_robot() {
    // Short silence timers, so that the test waits seconds, not the production 13.5 s.
    let sfu = TestSfu::start_with(bedside_sfu::SfuConfig {
        tcp_port: Some(0),
        silence: bedside_sfu::silence::SilenceConfig {
            holder: Duration::from_millis(800),
            grace: Duration::from_millis(800),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot", 1).await;
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doctor")).await;
    let observer = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Observer, "s")).await;
    let first = take_lease(&doctor).await;
    drive(&doctor, 5555, 1, 10).await;
    let vanished = Instant::now();
    doctor.vanish().await;

    let suspended = observer
        .wait_event(Duration::from_secs(10), |e| {
            e["type"] == "lease" && e["reason"] == "suspended"
        })
        .await
        .unwrap_or_else(|| panic!("the silent holder is suspended: {:?}", observer.events()));
    assert_eq!(suspended["epoch"].as_u64(), Some(first));
    let ev = observer
        .wait_event(Duration::from_secs(10), |e| {
            e["type"] == "lease" && e["reason"] == "disconnected"
        })
        .await
        .unwrap_or_else(|| panic!("the lease ends: {:?}", observer.events()));
    assert!(ev["holder"].is_null(), "{ev}");
    let epoch = ev["epoch"].as_u64().expect("epoch");
    assert!(epoch > first);
    assert!(
        wait_until(Duration::from_secs(3), || stops_since(
            &robot, first, vanished
        ) > 0)
        .await,
        "the suspension stopped the robot (epoch {first}): {:?}",
        robot_frames(&robot)
    );
    assert!(
        wait_until(Duration::from_secs(3), || stops_since(
            &robot, epoch, vanished
        ) > 0)
        .await,
        "a stop frame for epoch {epoch} reached the robot: {:?}",
        robot_frames(&robot)
    );
    observer.stop().await;
    robot.stop().await;
}

/// The robot's video as the SFU counted it while `n` more of its packets came in: (packets in,
/// packets forwarded to watchers). Forwarding is counted as each packet is written to each
/// watcher's session, so forwarded / in is how many watchers get the picture.
async fn video_fanout(sfu: &TestSfu, n: f64) -> (f64, f64) {
    let read = || {
        let text = sfu.sfu.metrics().render();
        (
            metric_value(&text, "bedside_rtp_packets_in_total{kind=\"video\"}"),
            metric_value(&text, "bedside_rtp_packets_out_total{kind=\"video\"}"),
        )
    };
    let (in0, out0) = read();
    assert!(
        wait_until(Duration::from_secs(5), || read().0 >= in0 + n).await,
        "the robot's video reaches the SFU"
    );
    let (in1, out1) = read();
    (in1 - in0, out1 - out0)
}

/// A member whose join token runs out (a student at the end of the booking) is told
/// (`expired`), its session ends (the room says it left, the gauge drops, its video stops) and
/// the others stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_shown_out_when_its_token_expires() {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot", 1).await;
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doctor")).await;
    // Long enough for a busy machine to connect and see video first.
    let claims = bedside_proto::Claims::new("student", &room, Role::Observer, 6);
    let student = spawn_viewer(&sfu, &room, &sfu.sign(&claims)).await;
    assert!(wait_until(Duration::from_secs(5), || !student.video().is_empty()).await);
    assert!(wait_until(Duration::from_secs(5), || !doctor.video().is_empty()).await);
    assert_eq!(sfu.sample("bedside_sessions{role=\"observer\"}"), Some(1.0));

    // Before the expiry both watchers get every video packet, and the student records them:
    // the measure below sees the student's share.
    let student_before = student.video().len();
    let (came, went) = video_fanout(&sfu, 40.0).await;
    assert!(
        went >= 1.8 * came,
        "before the expiry each video packet goes to the doctor and the student: {came} in, {went} forwarded"
    );
    assert!(
        student.video().len() > student_before,
        "the student was receiving video before its token ran out"
    );

    let told = student
        .wait_event(Duration::from_secs(15), |e| {
            e["type"] == "error" && e["code"] == "expired"
        })
        .await;
    assert!(told.is_some(), "told why: {:?}", student.events());
    // What the student's client records after this proves little (its task may have ended on
    // the closed connection); the SFU's own count of what it forwarded does: from now on each
    // video packet goes to one watcher, the doctor, whose picture goes on.
    let doctor_had = doctor.video().len();
    let (came, went) = video_fanout(&sfu, 40.0).await;
    assert!(
        went <= 1.2 * came,
        "after the expiry video goes to the doctor alone: {came} in, {went} forwarded"
    );
    assert!(
        wait_until(Duration::from_secs(3), || doctor.video().len()
            > doctor_had + 30)
        .await,
        "the doctor's video goes on"
    );
    let student_had = student.video().len();

    let id = student.session_id.clone();
    assert!(
        doctor
            .wait_event(Duration::from_secs(3), |e| e["type"] == "left"
                && e["id"] == id.as_str())
            .await
            .is_some(),
        "the room says the student left: {:?}",
        doctor.events()
    );
    assert!(
        wait_until(Duration::from_secs(3), || sfu
            .sample("bedside_sessions{role=\"observer\"}")
            == Some(0.0))
        .await,
        "the observer gauge dropped: {:?}",
        sfu.sample("bedside_sessions{role=\"observer\"}")
    );
    assert_eq!(sfu.sample("bedside_sessions{role=\"doctor\"}"), Some(1.0));
    assert_eq!(
        student.video().len(),
        student_had,
        "no video reached the expired student"
    );
    let _ = student.finish().await;
    doctor.stop().await;
    robot.stop().await;
}
