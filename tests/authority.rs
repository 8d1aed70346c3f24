//! What a hostile or buggy participant cannot do to a media worker, end to end over real UDP:
//! a flood of offers that never finish ICE does not lock out another room's consultant or stall
//! a third room's driver, and a panic inside a worker costs that worker's sessions, not the
//! worker (it starts over, keeping the rooms' e-stop latches).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedside_proto::{ControlFrame, FrameKind, Role};
use bedside_sfu::client::{Endpoint, Offering};
use bedside_sfu::SfuConfig;
use common::*;

/// POST an offer with `token` and never take part in ICE; the HTTP status.
async fn offer_and_vanish(http: &reqwest::Client, base: &str, room: &str, token: &str) -> u16 {
    let local = "127.0.0.1:9".parse().unwrap();
    let o = Offering::new(local, Endpoint::Whep, Instant::now()).expect("offer");
    http.post(format!("{base}/whep/{room}"))
        .header("content-type", "application/sdp")
        .bearer_auth(token)
        .body(o.offer.to_sdp_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_offers_without_ice_locks_nobody_out() {
    // One worker: all three rooms share it, as the flood would on a real node.
    let sfu = TestSfu::start_with(SfuConfig {
        workers: 1,
        ..SfuConfig::default()
    })
    .await;
    let (flooded, consult_room, driven) = (room(), room(), room());
    let robot = sfu.start_robot(&driven, "robot", 1).await;
    let driver = spawn_viewer(&sfu, &driven, &sfu.token(&driven, Role::Doctor, "driver")).await;
    take_lease(&driver).await;

    // The driver drives at 50 Hz from before the flood until after it.
    let driving = Arc::new(AtomicBool::new(true));
    let frames_sent = Arc::new(AtomicUsize::new(0));
    let driver_task = {
        let (control, driving, sent) = (
            driver.control_sender(),
            driving.clone(),
            frames_sent.clone(),
        );
        tokio::spawn(async move {
            let mut seq = 1u32;
            while driving.load(Ordering::SeqCst) {
                let frame = ControlFrame::drive(seq, seq * 20, 4242, 0, 0);
                assert!(
                    control.send_control(frame.encode().to_vec()),
                    "the driver runs"
                );
                sent.fetch_add(1, Ordering::SeqCst);
                seq += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // 500 offers from 500 tokens of one room, 25 at a time, none of which ever does ICE.
    let http = reqwest::Client::new();
    let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let refused = Arc::new(tokio::sync::Notify::new());
    let mut flooders = Vec::new();
    for _ in 0..25 {
        let (http, base, room, statuses, refused) = (
            http.clone(),
            sfu.base.clone(),
            flooded.clone(),
            statuses.clone(),
            refused.clone(),
        );
        let tokens: Vec<String> = (0..20)
            .map(|i| {
                sfu.token(
                    &room,
                    Role::Observer,
                    &format!("flood-{i}-{}", rand::random::<u32>()),
                )
            })
            .collect();
        flooders.push(tokio::spawn(async move {
            for t in tokens {
                let s = offer_and_vanish(&http, &base, &room, &t).await;
                statuses.lock().unwrap().push(s);
                if s == 503 {
                    refused.notify_one();
                }
            }
        }));
    }
    let flood_start = Instant::now();
    // Only once the flood is refused (its bound is really full, and offers keep coming) does a
    // consultant join another room on the same worker.
    tokio::time::timeout(Duration::from_secs(60), refused.notified())
        .await
        .expect("the flood hit the pending bound");
    let pending_when_refused = statuses
        .lock()
        .unwrap()
        .iter()
        .filter(|s| **s == 201)
        .count();
    let t0 = Instant::now();
    let consultant = spawn_viewer(
        &sfu,
        &consult_room,
        &sfu.token(&consult_room, Role::Doctor, "consultant"),
    )
    .await;
    let joined_in = t0.elapsed();
    for f in flooders {
        f.await.expect("flooder");
    }
    let flood_took = flood_start.elapsed();
    driving.store(false, Ordering::SeqCst);
    driver_task.await.expect("driver task");

    let statuses = statuses.lock().unwrap().clone();
    assert_eq!(statuses.len(), 500);
    let accepted = statuses.iter().filter(|s| **s == 201).count();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(
        accepted + busy,
        500,
        "201 or 503, nothing else: {statuses:?}"
    );
    assert!(
        pending_when_refused <= SfuConfig::default().max_pending_per_room,
        "one room holds at most its share of the pending slots: {pending_when_refused}"
    );
    assert!(busy > 0, "the flood really hit the bound ({flood_took:?})");
    // Loose bounds: correctness here, latency figures belong to the bench.
    assert!(
        joined_in < Duration::from_secs(10),
        "consultant joined in {joined_in:?}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !consultant.video().is_empty()
            || consultant.events().iter().any(|e| e.contains("welcome")))
        .await
    );
    let sent = frames_sent.load(Ordering::SeqCst);
    let driven_frames = || {
        robot_frames(&robot)
            .into_iter()
            .filter(|(_, f)| f.kind == FrameKind::Drive && f.linear_x == 4242)
            .map(|(t, _)| t)
            .collect::<Vec<Instant>>()
    };
    // The control channel is unreliable by design: a loose bound on what arrived.
    assert!(
        wait_until(Duration::from_secs(5), || driven_frames().len() * 10
            >= sent * 9)
        .await,
        "the driver kept driving: {} of {sent} frames",
        driven_frames().len()
    );
    let times = driven_frames();
    let worst_gap = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    println!(
        "flood: {accepted} offers pending, {busy} refused in {flood_took:?}; consultant joined in \
         {joined_in:?}; driver: {} of {sent} frames, worst gap {worst_gap:?}",
        times.len()
    );
    assert!(
        worst_gap < Duration::from_secs(1),
        "longest gap {worst_gap:?}"
    );
    consultant.stop().await;
    driver.stop().await;
    robot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_starts_over_and_keeps_the_latch() {
    let sfu = TestSfu::start_with(SfuConfig {
        workers: 1,
        ..SfuConfig::default()
    })
    .await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot", 1).await;
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doc")).await;
    doctor.send_event(r#"{"type":"estop"}"#);
    assert!(doctor
        .wait_event(Duration::from_secs(3), |e| e["type"] == "estop"
            && e["latched"] == true)
        .await
        .is_some());

    sfu.sfu.inject_panic_for_tests(&room).await;
    assert!(
        wait_until(Duration::from_secs(3), || sfu
            .metric("bedside_worker_restarts_total")
            == 1.0)
        .await
    );
    assert_eq!(sfu.sample("bedside_sessions{role=\"doctor\"}"), Some(0.0));
    assert_eq!(sfu.sample("bedside_rooms"), Some(0.0));
    // The old sessions are gone (their peers are told nothing: they time out and reconnect).
    let _ = robot.finish().await;
    let _ = doctor.finish().await;

    // The worker serves again, and the room comes back latched.
    let robot = sfu.start_robot(&room, "robot", 5000).await;
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doc")).await;
    assert!(
        wait_until(Duration::from_secs(5), || !doctor.video().is_empty()).await,
        "video flows through the restarted worker"
    );
    assert!(doctor
        .wait_event(Duration::from_secs(3), |e| e["type"] == "estop"
            && e["latched"] == true)
        .await
        .is_some());
    take_lease(&doctor).await;
    drive(&doctor, 777, 1, 10).await;
    assert!(
        wait_until(Duration::from_secs(3), || sfu.metric(
            "bedside_control_frames_dropped_total{reason=\"estop_latched\"}"
        ) >= 9.0)
        .await
    );
    assert!(robot_frames(&robot).iter().all(|(_, f)| f.linear_x != 777));
    doctor.stop().await;
    robot.stop().await;
}
