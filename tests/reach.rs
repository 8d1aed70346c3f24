//! Reaching Bedside through networks that move and block: an ICE restart by `PATCH` keeps a
//! session (and its lease) across a change of address, and the old credentials are refused.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bedside_proto::Role;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_keeps_the_session_and_the_lease() {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot", 1).await;
    let doctor = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "doc")).await;
    assert!(wait_until(Duration::from_secs(5), || !doctor.video().is_empty()).await);
    let epoch = take_lease(&doctor).await;
    let session = doctor.session_id.clone();

    // The laptop changes network: a new source address, new ICE credentials by PATCH.
    doctor.restart_ice();
    assert!(
        wait_until(Duration::from_secs(5), || doctor
            .log
            .restarted
            .load(Ordering::SeqCst)
            == 1)
        .await,
        "the PATCH was answered"
    );
    let restarted = Instant::now();
    assert!(
        wait_until(Duration::from_secs(1), || doctor
            .count_between(restarted, Instant::now())
            > 10)
        .await,
        "video flows again within a second"
    );
    assert_eq!(sfu.metric("bedside_ice_restarts_total"), 1.0);
    // Same session, same lease, same epoch: no lease change was announced.
    let events = doctor.events();
    let later_lease = events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .any(|e| e["type"] == "lease" && e["epoch"].as_u64().is_some_and(|n| n > epoch));
    assert!(!later_lease, "the lease never changed: {events:?}");
    drive(&doctor, 321, 1000, 10).await;
    assert!(
        wait_until(Duration::from_secs(3), || robot_frames(&robot)
            .iter()
            .any(|(_, f)| f.linear_x == 321 && u64::from(f.epoch) == epoch))
        .await,
        "it still drives, same epoch"
    );
    assert_eq!(sfu.metric("bedside_sessions{role=\"doctor\"}"), 1.0);
    assert_eq!(doctor.session_id, session);

    // The old credentials are refused from then on: a correctly signed binding request with
    // the old ufrag, from an address nobody has seen, finds no session.
    let old = doctor.log.first_server_ice.lock().unwrap().clone().unwrap();
    let dropped = || sfu.metric("bedside_datagrams_dropped_total{reason=\"unknown_source\"}");
    let before = dropped();
    let username = format!("{}:whoever", old.ufrag);
    let hmac = str0m::crypto::from_feature_flags().sha1_hmac_provider;
    let request = str0m::ice::StunMessage::binding_request(
        &username,
        str0m::ice::TransId::new(),
        true,
        1,
        100,
        false,
    );
    let mut buf = vec![0u8; 512];
    let n = request
        .to_bytes(Some(old.pwd.as_bytes()), &mut buf, |k, p| {
            hmac.sha1_hmac(k, p)
        })
        .unwrap();
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger
        .send_to(&buf[..n], sfu.sfu.media_addrs()[0])
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || dropped() == before + 1.0).await,
        "the old ufrag finds nothing"
    );
    doctor.stop().await;
    robot.stop().await;
}
