//! Room events reach the audit log through the one-process wiring (`bedside serve`): the SFU's
//! report hook (`node_local::reporter`) hands each lease change and e-stop to the API's hub,
//! which writes it to the audit log an administrator reads. `split_nodes.rs` covers the same
//! path across two processes (the node channel over HTTP); this is the path a single-node
//! install depends on. Real str0m peers over UDP, SQLite in a temp dir.

mod common;

use std::time::{Duration, Instant};

use bedside_api::testing::{expect, minutes, Client};
use bedside_api::UserRole;
use bedside_sfu::client::{Endpoint, WebRtcClient};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The audit entries of `kind` in `room`, waited for (the log is written behind a queue) until
/// there are at least `n`; whatever is there when the deadline passes.
async fn audited(api: &Client, admin: &str, kind: &str, room: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = expect(
            StatusCode::OK,
            api.get(&format!("/api/audit?kind={kind}&room={room}"), admin)
                .await,
        );
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if entries.len() >= n || Instant::now() >= deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_events_reach_the_audit_log_in_one_process() {
    let one_process::Local {
        running: _running,
        client: api,
        dir: _dir,
    } = one_process::serve_local(|_| {}).await;
    let admin = api.user(UserRole::Admin).await;
    let doctor = api.user(UserRole::Doctor).await;
    let (robot_id, credential) = api.robot().await;
    let room = robot_id.to_string();

    // The robot publishes with the token its credential gets.
    let publish = expect(
        StatusCode::OK,
        api.call(
            Method::POST,
            &format!("/api/robots/{room}/publish-token"),
            Some(&format!("Robot {credential}")),
            None,
        )
        .await,
    );
    let robot = WebRtcClient::connect(
        &api.base,
        Endpoint::Whip,
        &room,
        publish["token"].as_str().expect("publish token"),
        LOCALHOST,
    )
    .await
    .expect("the robot is admitted");
    let robot = spawn_robot_ready(robot).await;

    // The booking's doctor joins, takes the lease, presses the e-stop and clears it.
    let booking = api
        .book_from_now(&doctor.token, robot_id, minutes(0), minutes(30))
        .await;
    let joined = api.join_ok(&doctor.token, &booking).await;
    let viewer = WebRtcClient::connect(
        &api.base,
        Endpoint::Whep,
        &room,
        joined["token"].as_str().expect("join token"),
        LOCALHOST,
    )
    .await
    .expect("the doctor is admitted");
    let viewer = spawn_viewer_client_ready(viewer).await;
    let epoch = take_lease(&viewer).await;
    viewer.send_event(r#"{"type":"estop"}"#);
    viewer
        .wait_event(Duration::from_secs(5), |e| {
            e["type"] == "estop" && e["latched"] == true
        })
        .await
        .expect("the e-stop latches");
    viewer.send_event(r#"{"type":"estop_clear"}"#);
    viewer
        .wait_event(Duration::from_secs(5), |e| {
            e["type"] == "estop" && e["latched"] == false
        })
        .await
        .expect("the holder clears the e-stop");

    // Each is in the audit log, naming the doctor (its token's subject is its user id).
    let me = doctor.id.to_string();
    let leases = audited(&api, &admin.token, "room.lease_changed", &room, 1).await;
    assert!(
        leases.iter().any(|e| e["actor"] == me.as_str()
            && e["room"] == room.as_str()
            && e["detail"]["epoch"] == epoch
            && e["detail"]["reason"] == "granted"),
        "the doctor's lease (epoch {epoch}) is in the audit log: {leases:?}"
    );
    for kind in ["room.estop_latched", "room.estop_cleared"] {
        let entries = audited(&api, &admin.token, kind, &room, 1).await;
        assert_eq!(entries.len(), 1, "one {kind} entry: {entries:?}");
        assert_eq!(entries[0]["actor"], me.as_str(), "{kind}: {entries:?}");
        assert_eq!(entries[0]["room"], room.as_str(), "{kind}: {entries:?}");
    }
    viewer.stop().await;
    robot.stop().await;
}
