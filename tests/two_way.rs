//! Two-way consultation end to end with real str0m peers over real UDP: the robot's screen and
//! speaker get the driving doctor's camera and the doctors' voices on receive slots negotiated
//! once; each doctor hears the others and never itself; a student publishes nothing; slots
//! switch source without renegotiation, with one continuous numbering.
//!
//! Each participant sends synthetic RTP whose first payload byte after the VP8 descriptor (or
//! the first Opus byte) names its sender, so who hears and sees whom is read off the packets.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bedside_proto::Role;
use bedside_sfu::client::{two_way_lines, ClientEvent, Endpoint, WebRtcClient};
use common::agent::{agent_binary, robot_agent};
use common::*;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};
use tokio::sync::watch;

/// One received packet, as the test needs it.
#[derive(Debug, Clone)]
struct Got {
    at: Instant,
    mid: Mid,
    ssrc: u32,
    seq: u64,
    /// The sender's mark (see the module docs).
    from: u8,
    keyframe: bool,
}

#[derive(Default)]
struct Log {
    got: Mutex<Vec<Got>>,
    events: Mutex<Vec<serde_json::Value>>,
}

struct Party {
    log: Arc<Log>,
    session_id: String,
    lines: Vec<(Mid, MediaKind, Direction)>,
    level: watch::Sender<i8>,
    outbox: tokio::sync::mpsc::UnboundedSender<String>,
    stop: watch::Sender<bool>,
    /// Ends with the connection's error, if it failed (see [`Party::stop`]).
    task: tokio::task::JoinHandle<Result<(), String>>,
    /// The server's SDP answer.
    answer: String,
}

/// A VP8 packet: descriptor with a 15-bit picture id, S=1, then the VP8 header byte (bit 0 clear:
/// keyframe) and the sender's mark.
fn vp8(pid: u16, key: bool, mark: u8) -> Vec<u8> {
    vec![
        0x90,
        0x80,
        0x80 | (pid >> 8) as u8,
        (pid & 0xff) as u8,
        if key { 0x00 } else { 0x01 },
        mark,
        0,
        0,
    ]
}

fn mark_of(payload: &[u8], video: bool) -> u8 {
    if video {
        payload.get(5).copied().unwrap_or(0)
    } else {
        payload.first().copied().unwrap_or(0)
    }
}

/// Connect with these m-lines and publish on every sending line until stopped: video at 30 fps
/// (a keyframe every 30 frames), audio at 50 packets/s with the audio level from `level`.
async fn join(
    sfu: &TestSfu,
    endpoint: Endpoint,
    room: &str,
    token: &str,
    lines: &[(MediaKind, Direction)],
    mark: u8,
) -> Party {
    join_at(sfu, endpoint, room, token, lines, mark, -20).await
}

/// [`join`], the microphone at `level` dBov from its first packet on (a level set after
/// joining races the first packets, which a slot selector may already have acted on).
async fn join_at(
    sfu: &TestSfu,
    endpoint: Endpoint,
    room: &str,
    token: &str,
    lines: &[(MediaKind, Direction)],
    mark: u8,
    level: i8,
) -> Party {
    let mut c = WebRtcClient::connect_with(&sfu.base, endpoint, room, token, LOCALHOST, lines)
        .await
        .expect("signalling");
    c.wait_ready(Duration::from_secs(5))
        .await
        .expect("connects");
    let log = Arc::new(Log::default());
    let (level, level_rx) = watch::channel(level);
    let answer = c.answer_sdp().to_string();
    let (stop, stop_rx) = watch::channel(false);
    let (outbox, mut inbox) = tokio::sync::mpsc::unbounded_channel::<String>();
    let session_id = c.session_id.clone();
    let lines = c.lines().to_vec();
    let my_lines = lines.clone();
    let l = log.clone();
    let sending: Vec<(Mid, MediaKind)> = lines
        .iter()
        .filter(|(_, _, d)| matches!(d, Direction::SendOnly | Direction::SendRecv))
        .map(|(m, k, _)| (*m, *k))
        .collect();
    let task = tokio::spawn(async move {
        let vp8_pt = c.pt_for(Codec::Vp8).map(|p| p.pt());
        let opus_pt = c.pt_for(Codec::Opus).map(|p| p.pt());
        let (mut seq, mut frame) = (1u64, 0u16);
        let start = Instant::now();
        let mut next = start;
        while !*stop_rx.borrow() {
            while let Ok(json) = inbox.try_recv() {
                c.send_event(&json);
            }
            let now = Instant::now();
            if now >= next {
                frame = frame.wrapping_add(1);
                let lvl = *level_rx.borrow();
                for (mid, kind) in &sending {
                    let (pt, payload, ext) = match kind {
                        MediaKind::Video => (
                            vp8_pt,
                            vp8(frame & 0x7fff, frame % 30 == 1, mark),
                            ExtensionValues::default(),
                        ),
                        MediaKind::Audio => (
                            opus_pt,
                            vec![mark, 0xf8, 0xff, 0xfe],
                            ExtensionValues {
                                audio_level: Some(lvl),
                                voice_activity: Some(lvl > -50),
                                ..Default::default()
                            },
                        ),
                    };
                    let Some(pt) = pt else { continue };
                    let ts = u32::from(frame).wrapping_mul(if *kind == MediaKind::Video {
                        3000
                    } else {
                        960
                    });
                    let w = RtpWrite::new(pt, SeqNo::from(seq), ts, now, payload)
                        .marker(true)
                        .ext_vals(ext)
                        .nackable(false);
                    c.write_rtp_on(*mid, w);
                }
                seq += 1;
                next += Duration::from_millis(33);
            }
            let until = next.min(Instant::now() + Duration::from_millis(10));
            // An error is the connection failing, not a timeout: it ends the party and the
            // test hears of it from `stop`.
            while let Some(ev) = c
                .next_event(until)
                .await
                .map_err(|e| format!("connection (mark {mark:#x}): {e}"))?
            {
                match ev {
                    ClientEvent::Rtp(p) => {
                        let Some(mid) = c.mid_of(&p) else { continue };
                        let video = my_lines
                            .iter()
                            .any(|(m, k, _)| *m == mid && *k == MediaKind::Video);
                        l.got.lock().unwrap().push(Got {
                            at: Instant::now(),
                            mid,
                            ssrc: *p.header.ssrc,
                            seq: *p.seq_no,
                            from: mark_of(&p.payload, video),
                            keyframe: video && p.payload.get(4) == Some(&0x00),
                        });
                    }
                    ClientEvent::Event(e) => {
                        if let Ok(v) = serde_json::from_str(&e) {
                            l.events.lock().unwrap().push(v);
                        }
                    }
                    _ => {}
                }
            }
        }
        c.close()
            .await
            .map_err(|e| format!("DELETE (mark {mark:#x}): {e}"))
    });
    Party {
        log,
        session_id,
        lines,
        level,
        outbox,
        stop,
        task,
        answer,
    }
}

impl Party {
    /// Our receive-only m-lines of `kind`, in order (for a viewer the first is the robot's).
    fn recv(&self, kind: MediaKind) -> Vec<Mid> {
        self.lines
            .iter()
            .filter(|(_, k, d)| {
                *k == kind && matches!(d, Direction::RecvOnly | Direction::SendRecv)
            })
            .map(|(m, _, _)| *m)
            .collect()
    }

    /// Senders heard on `mid` since `since`, with packet counts.
    fn heard_on(&self, mid: Mid, since: Instant) -> HashMap<u8, usize> {
        let mut m = HashMap::new();
        for g in self.log.got.lock().unwrap().iter() {
            if g.mid == mid && g.at >= since {
                *m.entry(g.from).or_default() += 1;
            }
        }
        m
    }

    /// Senders heard on any of `mids` since `since`.
    fn heard(&self, mids: &[Mid], since: Instant) -> Vec<u8> {
        let mut v: Vec<u8> = mids
            .iter()
            .flat_map(|m| self.heard_on(*m, since).into_keys())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn send_event(&self, json: &str) {
        self.outbox.send(json.to_string()).expect("party running");
    }

    async fn wait_event(
        &self,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(v) = self.log.events.lock().unwrap().iter().find(|v| pred(v)) {
                return Some(v.clone());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Our sending m-lines (for a student: the ones the server must refuse).
    fn sending(&self) -> Vec<(Mid, Direction)> {
        self.lines
            .iter()
            .filter(|(_, _, d)| matches!(d, Direction::SendOnly | Direction::SendRecv))
            .map(|(m, _, d)| (*m, *d))
            .collect()
    }

    /// The direction attribute of `mid`'s m-section in the server's answer.
    fn answered(&self, mid: Mid) -> Option<String> {
        let want = format!("a=mid:{mid}");
        self.answer
            .split("m=")
            .skip(1)
            .find(|section| section.lines().any(|l| l.trim_end() == want))
            .and_then(|section| {
                section.lines().map(str::trim_end).find_map(|l| {
                    ["a=sendonly", "a=recvonly", "a=sendrecv", "a=inactive"]
                        .contains(&l)
                        .then(|| l.to_string())
                })
            })
    }

    /// Stop publishing and leave; a connection that failed meanwhile fails the test.
    async fn stop(self) {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("party failed: {e}"),
            Err(e) => panic!("party task panicked: {e}"),
        }
    }
}

fn doctor_token(sfu: &TestSfu, room: &str, sub: &str, can_control: bool) -> String {
    let mut c = bedside_proto::Claims::new(sub, room, Role::Doctor, 600);
    c.can_control = can_control;
    sfu.sign(&c)
}

const ROBOT: u8 = 0xAA;
const D1: u8 = 0xD1;
const D2: u8 = 0xD2;
const STUDENT: u8 = 0x0B;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_robot_sees_the_driver_and_everyone_hears_the_doctors_but_not_themselves() {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = join(
        &sfu,
        Endpoint::Whip,
        &room,
        &sfu.token(&room, Role::Robot, "robot"),
        &two_way_lines(Endpoint::Whip, 3, 1),
        ROBOT,
    )
    .await;
    let d1 = join(
        &sfu,
        Endpoint::Whep,
        &room,
        &doctor_token(&sfu, &room, "doc-1", true),
        &two_way_lines(Endpoint::Whep, 3, 1),
        D1,
    )
    .await;
    let d2 = join(
        &sfu,
        Endpoint::Whep,
        &room,
        &doctor_token(&sfu, &room, "doc-2", false),
        &two_way_lines(Endpoint::Whep, 3, 1),
        D2,
    )
    .await;
    // A hostile student: offers a `sendrecv` microphone and a `sendonly` camera, and sends RTP
    // on both whatever the answer says.
    let hostile: Vec<(MediaKind, Direction)> = two_way_lines(Endpoint::Whep, 3, 0)
        .into_iter()
        .map(|(k, d)| match (k, d) {
            (MediaKind::Audio, Direction::SendOnly) => (k, Direction::SendRecv),
            kd => kd,
        })
        .collect();
    let student = join(
        &sfu,
        Endpoint::Whep,
        &room,
        &sfu.token(&room, Role::Observer, "student"),
        &hostile,
        STUDENT,
    )
    .await;

    // The driver takes the lease: the robot's screen shows the driver.
    d1.send_event(r#"{"type":"request_lease"}"#);
    assert!(d1
        .wait_event(Duration::from_secs(3), |e| e["type"] == "lease"
            && e["holder"] == d1.session_id.as_str())
        .await
        .is_some());
    let presenter = robot.recv(MediaKind::Video)[0];
    assert!(
        robot
            .wait_event(Duration::from_secs(3), |e| e["type"] == "slots"
                && e["video"][0] == d1.session_id.as_str())
            .await
            .is_some(),
        "the robot is told its presenter slot carries the driver"
    );
    let t = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        robot.heard(&[presenter], t),
        vec![D1],
        "the robot's screen: the driver only"
    );
    assert_eq!(
        robot.heard(&robot.recv(MediaKind::Audio), t),
        vec![D1, D2],
        "the robot hears both doctors"
    );
    // Doctors: the robot on their robot lines, the other doctor on their slots, never themselves.
    let robot_lines = |p: &Party| vec![p.recv(MediaKind::Video)[0], p.recv(MediaKind::Audio)[0]];
    let slots = |p: &Party| {
        let mut v = p.recv(MediaKind::Audio)[1..].to_vec();
        v.extend(p.recv(MediaKind::Video)[1..].iter().copied());
        v
    };
    assert_eq!(d1.heard(&robot_lines(&d1), t), vec![ROBOT]);
    assert_eq!(
        d1.heard(&slots(&d1), t),
        vec![D2],
        "the driver hears and sees the consultant, not itself"
    );
    assert_eq!(
        d2.heard(&slots(&d2), t),
        vec![D1],
        "the consultant hears and sees the driver, not itself"
    );
    assert_eq!(
        student.heard(&slots(&student), t),
        vec![D1, D2],
        "the student hears the doctors"
    );
    assert_eq!(student.heard(&robot_lines(&student), t), vec![ROBOT]);
    // Nobody ever receives anything from the student, and its media is dropped and counted.
    for p in [&robot, &d1, &d2] {
        assert!(p.log.got.lock().unwrap().iter().all(|g| g.from != STUDENT));
    }
    assert!(sfu.metric("bedside_datagrams_dropped_total{reason=\"observer_media\"}") > 0.0);
    // ... and the answer refused its microphone and camera outright: the server will never
    // receive on them (a plain WHEP player's browser then never even opens the devices). The
    // `sendrecv` line is answered `sendonly`: the server may send on it (it is one more slot,
    // where the student heard a doctor above), never receive.
    let sending = student.sending();
    assert_eq!(
        sending.iter().map(|(_, d)| *d).collect::<Vec<_>>(),
        vec![Direction::SendRecv, Direction::SendOnly],
        "the student offered to send audio (sendrecv) and video (sendonly)"
    );
    for (mid, offered) in sending {
        let want = match offered {
            Direction::SendRecv => "a=sendonly",
            _ => "a=inactive",
        };
        assert_eq!(
            student.answered(mid).as_deref(),
            Some(want),
            "the answer on the student's {offered} m-line {mid}: {}",
            student.answer
        );
    }

    // Handoff: the robot's presenter becomes the new driver, on the same slot, without
    // renegotiation, numbered on as one stream.
    d1.send_event(&format!(r#"{{"type":"handoff","to":"{}"}}"#, d2.session_id));
    let handoff = Instant::now();
    assert!(
        wait_until(Duration::from_secs(3), || robot
            .heard_on(presenter, handoff)
            .contains_key(&D2))
        .await,
        "the presenter switched to the new driver"
    );
    let switched = robot
        .log
        .got
        .lock()
        .unwrap()
        .iter()
        .find(|g| g.mid == presenter && g.at >= handoff && g.from == D2)
        .map(|g| g.at)
        .unwrap();
    assert!(
        switched - handoff < Duration::from_secs(1),
        "within a second: {:?}",
        switched - handoff
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_slot: Vec<Got> = robot
        .log
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|g| g.mid == presenter)
        .cloned()
        .collect();
    let ssrcs: std::collections::HashSet<u32> = on_slot.iter().map(|g| g.ssrc).collect();
    assert_eq!(ssrcs.len(), 1, "one SSRC on the slot throughout");
    for w in on_slot.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq + 1,
            "continuous numbering across the switch"
        );
    }
    let first_d2 = on_slot.iter().find(|g| g.from == D2).unwrap();
    assert!(first_d2.keyframe, "the new source starts at a keyframe");
    assert!(on_slot
        .iter()
        .skip_while(|g| g.from == D1)
        .all(|g| g.from == D2));

    for p in [student, d2, d1, robot] {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_slots_carry_the_three_loudest_of_five_doctors() {
    let sfu = TestSfu::start().await;
    let room = room();
    let levels: [i8; 5] = [-10, -20, -30, -60, -70];
    let mut doctors = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let p = join(
            &sfu,
            Endpoint::Whep,
            &room,
            &doctor_token(&sfu, &room, &format!("doc-{i}"), false),
            &two_way_lines(Endpoint::Whep, 3, 0),
            0x10 + i as u8,
        )
        .await;
        p.level.send(*level).unwrap();
        doctors.push(p);
    }
    let student = join(
        &sfu,
        Endpoint::Whep,
        &room,
        &sfu.token(&room, Role::Observer, "s"),
        &two_way_lines(Endpoint::Whep, 3, 0),
        STUDENT,
    )
    .await;
    // Let the levels settle and the selector choose; then listen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let slots = student.recv(MediaKind::Audio)[1..].to_vec();
    assert_eq!(
        student.heard(&slots, t),
        vec![0x10, 0x11, 0x12],
        "the three loudest"
    );
    // The loudest doctor hears the next three loudest: never itself (mix-minus).
    let loudest = &doctors[0];
    let slots = loudest.recv(MediaKind::Audio)[1..].to_vec();
    let heard = loudest.heard(&slots, t);
    assert!(!heard.contains(&0x10), "never itself: {heard:?}");
    assert!(
        heard.contains(&0x11) && heard.contains(&0x12),
        "the next loudest: {heard:?}"
    );
    let quiet = &doctors[4];
    let slots = quiet.recv(MediaKind::Audio)[1..].to_vec();
    assert_eq!(quiet.heard(&slots, t), vec![0x10, 0x11, 0x12]);
    assert!(
        student
            .wait_event(Duration::from_secs(1), |e| e["type"] == "speaking"
                && e["ids"].as_array().is_some_and(|a| a.len() == 3))
            .await
            .is_some(),
        "everyone is told who speaks"
    );
    student.stop().await;
    for d in doctors {
        d.stop().await;
    }
}

/// One audio slot, two doctors: the slot does not flap on a short loud burst of the doctor
/// without it, and moves to that doctor once it speaks on (louder by the margin, for longer than
/// the switch delay) while the holder is silent. The thresholds are `speakers.rs`'s defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slot_ignores_a_short_burst_and_follows_a_sustained_voice() {
    let sfu = TestSfu::start().await;
    let room = room();
    // The student listens on one slot; it joins first so the first doctor takes it at once.
    let student = join(
        &sfu,
        Endpoint::Whep,
        &room,
        &sfu.token(&room, Role::Observer, "s"),
        &two_way_lines(Endpoint::Whep, 1, 0),
        STUDENT,
    )
    .await;
    let slot = student.recv(MediaKind::Audio)[1];
    // D1 speaks at -35 dBov; D2 is quieter but above the speech floor (-50): both active.
    let d1 = join_at(
        &sfu,
        Endpoint::Whep,
        &room,
        &doctor_token(&sfu, &room, "doc-1", false),
        &two_way_lines(Endpoint::Whep, 1, 0),
        D1,
        -35,
    )
    .await;
    let d2 = join_at(
        &sfu,
        Endpoint::Whep,
        &room,
        &doctor_token(&sfu, &room, "doc-2", false),
        &two_way_lines(Endpoint::Whep, 1, 0),
        D2,
        -45,
    )
    .await;
    let slot_is = |who: &Party| {
        let id = who.session_id.clone();
        move |e: &serde_json::Value| e["type"] == "slots" && e["audio"][0] == id.as_str()
    };
    assert!(
        student
            .wait_event(Duration::from_secs(5), slot_is(&d1))
            .await
            .is_some(),
        "the slot carries the first doctor"
    );
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || student
            .heard_on(slot, t)
            .get(&D1)
            .is_some_and(|n| *n >= 10))
        .await,
        "D1's voice flows on the slot"
    );

    // A 200 ms burst 35 dB louder than the holder: its smoothed level passes the holder's by
    // more than the 6 dB margin for well under the 500 ms switch delay.
    let burst = Instant::now();
    d2.level.send(0).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    d2.level.send(-45).unwrap();
    // Watch the slot for 2 s: D2 must never be heard on it, nor the student told it moved.
    let watched_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watched_until {
        let heard = student.heard_on(slot, burst);
        assert!(
            !heard.contains_key(&D2),
            "a 200 ms burst took the slot: {heard:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        student
            .heard_on(slot, burst)
            .get(&D1)
            .is_some_and(|n| *n > 30),
        "D1 stayed on the slot throughout: {:?}",
        student.heard_on(slot, burst)
    );
    let told = slot_is(&d2);
    assert!(
        !student.log.events.lock().unwrap().iter().any(told),
        "the student was never told the slot moved"
    );

    // D1 falls silent, D2 speaks on: the slot moves, after the switch delay, within 1.5 s.
    let change = Instant::now();
    d1.level.send(-127).unwrap();
    d2.level.send(-15).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || student
            .heard_on(slot, change)
            .contains_key(&D2))
        .await,
        "a sustained voice takes the slot"
    );
    let moved = student
        .log
        .got
        .lock()
        .unwrap()
        .iter()
        .find(|g| g.mid == slot && g.at >= change && g.from == D2)
        .map(|g| g.at - change)
        .unwrap();
    assert!(
        moved >= Duration::from_millis(500),
        "not before the switch delay: {moved:?}"
    );
    assert!(moved <= Duration::from_millis(1500), "promptly: {moved:?}");
    assert!(
        student
            .wait_event(Duration::from_secs(1), slot_is(&d2))
            .await
            .is_some(),
        "the student is told the slot carries D2 now"
    );
    // From the switch on, the slot carries D2 only.
    let after = change + moved + Duration::from_millis(100);
    assert!(
        wait_until(Duration::from_secs(3), || student
            .heard_on(slot, after)
            .get(&D2)
            .is_some_and(|n| *n >= 10))
        .await
    );
    assert_eq!(student.heard(&[slot], after), vec![D2]);
    for p in [student, d2, d1] {
        p.stop().await;
    }
}

/// `bedside robot --media-out`: the driving doctor's camera reaches the robot's own screen as
/// plain RTP with an SDP file, and a real decoder (ffmpeg) decodes frames from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_robot_agent_hands_the_driver_to_a_real_decoder() {
    use bedside_sfu::client::media::{packetize, FrameSource};
    let sfu = TestSfu::start().await;
    let room = room();
    let dir = tempfile::tempdir().unwrap();
    let sdp = dir.path().join("screen.sdp");
    // Four ports: video, then audio slots at +2, +4, +6.
    let port = 20_000 + (std::process::id() % 5_000) as u16 * 8;
    let token = sfu.token(&room, Role::Robot, "robot");
    let mut agent = robot_agent(agent_binary(), &sfu.base, &room, &token)
        .args(["--sink", "udp:127.0.0.1:9"])
        .args(["--media-out", &format!("127.0.0.1:{port}")])
        .arg("--media-sdp")
        .arg(&sdp)
        .spawn()
        .expect("bedside robot starts");

    // The driver publishes the bundled VP8 pattern as its camera.
    let mut c = WebRtcClient::connect_with(
        &sfu.base,
        Endpoint::Whep,
        &room,
        &doctor_token(&sfu, &room, "doc", true),
        LOCALHOST,
        &two_way_lines(Endpoint::Whep, 0, 0),
    )
    .await
    .expect("doctor joins");
    c.wait_ready(Duration::from_secs(5))
        .await
        .expect("connects");
    let camera = c
        .lines()
        .iter()
        .find(|(_, k, d)| *k == MediaKind::Video && *d == Direction::SendOnly)
        .map(|(m, _, _)| *m)
        .unwrap();
    c.send_event(r#"{"type":"request_lease"}"#);
    let (stop, stop_rx) = watch::channel(false);
    let doctor = tokio::spawn(async move {
        let pt = c.pt_for(Codec::Vp8).unwrap().pt();
        let mut source = FrameSource::test_pattern();
        let (mut seq, mut ts) = (1u64, 0u32);
        let mut next = Instant::now();
        while !*stop_rx.borrow() {
            if Instant::now() >= next {
                let frame = source.next_frame().unwrap().clone();
                let packets = packetize(source.codec, &frame);
                let n = packets.len();
                for (i, p) in packets.into_iter().enumerate() {
                    let w = RtpWrite::new(pt, SeqNo::from(seq), ts, Instant::now(), p)
                        .marker(i + 1 == n)
                        .nackable(true);
                    c.write_rtp_on(camera, w);
                    seq += 1;
                }
                ts = ts.wrapping_add(3000);
                next += Duration::from_millis(33);
            }
            while let Some(ev) = c
                .next_event(next)
                .await
                .map_err(|e| format!("doctor connection: {e}"))?
            {
                if let ClientEvent::KeyframeRequest = ev {
                    source.restart_at_keyframe();
                }
            }
        }
        c.close().await.map_err(|e| format!("doctor DELETE: {e}"))
    });

    assert!(
        wait_until(Duration::from_secs(10), || sdp.exists()).await,
        "the agent wrote its SDP file"
    );
    let text = std::fs::read_to_string(&sdp).unwrap();
    assert!(text.contains(&format!("m=video {port} RTP/AVP")), "{text}");
    assert!(
        text.contains("VP8/90000") && text.contains("opus/48000/2"),
        "{text}"
    );
    // ffmpeg decodes the presenter stream from the agent's SDP (its log goes to a file: a
    // player that never gets a frame must fail the test with what it said, not hang it).
    let log_path = dir.path().join("ffmpeg.log");
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-protocol_whitelist",
            "file,udp,rtp",
        ])
        .arg("-i")
        .arg(&sdp)
        .args(["-map", "0:v", "-frames:v", "15", "-f", "null", "-"])
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    let status = tokio::time::timeout(Duration::from_secs(30), ffmpeg.wait()).await;
    let _ = ffmpeg.kill().await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let status = status.unwrap_or_else(|_| panic!("ffmpeg did not finish in 30 s: {log}"));
    assert!(status.unwrap().success(), "ffmpeg failed: {log}");
    assert!(log.contains("vp8") && log.contains("320x240"), "{log}");
    assert!(
        log.contains("frame=   15") || log.contains("frame=15"),
        "{log}"
    );
    let _ = stop.send(true);
    if let Err(e) = doctor.await.expect("doctor task") {
        panic!("the doctor failed: {e}");
    }
    let _ = agent.kill().await;
}
