//! Live status end to end in one process (`bedside serve`: API, SFU and the node channel between
//! them) with real str0m peers over UDP: the room's status reaches the API's live view as the
//! room changes, an administrator ends one participant's session through the node channel, and
//! the robot leaving takes it offline.

mod common;

use std::time::{Duration, Instant};

use bedside_api::testing::{expect, Client};
use bedside_api::UserRole;
use bedside_sfu::client::{Endpoint, WebRtcClient};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A room status is sent at most once a second per room: a change shows within this.
const SOON: Duration = Duration::from_secs(2);

async fn start() -> (Client, tempfile::TempDir) {
    let one_process::Local { client, dir, .. } = one_process::serve_local(|_| {}).await;
    (client, dir)
}

/// `robot`'s entry in `GET /api/robots/live` as `token` sees it.
async fn live_of(bed: &Client, token: &str, robot: Uuid) -> Value {
    let list = expect(StatusCode::OK, bed.get("/api/robots/live", token).await);
    list.as_array()
        .and_then(|l| l.iter().find(|r| r["robot"] == robot.to_string()).cloned())
        .expect("every robot is listed")
}

/// Poll `check` on `robot`'s live entry until it holds or `within` passes; the last entry and
/// when it held.
async fn until_live(
    bed: &Client,
    token: &str,
    robot: Uuid,
    within: Duration,
    check: impl Fn(&Value) -> bool,
) -> (Value, Option<Instant>) {
    let deadline = Instant::now() + within;
    loop {
        let v = live_of(bed, token, robot).await;
        if check(&v) {
            return (v, Some(Instant::now()));
        }
        if Instant::now() >= deadline {
            return (v, None);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn connect(bed: &Client, endpoint: Endpoint, room: &str, token: &str) -> WebRtcClient {
    WebRtcClient::connect(&bed.base, endpoint, room, token, LOCALHOST)
        .await
        .expect("admitted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_follows_the_room() {
    let (bed, _dir) = start().await;
    let admin = bed.user(UserRole::Admin).await;
    let doctor = bed.user(UserRole::Doctor).await;
    let outsider = bed.user(UserRole::Doctor).await;
    let (robot, credential) = bed.robot().await;
    let room = robot.to_string();
    assert_eq!(live_of(&bed, &outsider.token, robot).await["online"], false);

    // The robot connects and reports its battery: online with it, for anyone.
    let publish = expect(
        StatusCode::OK,
        bed.call(
            reqwest::Method::POST,
            &format!("/api/robots/{robot}/publish-token"),
            Some(&format!("Robot {credential}")),
            None,
        )
        .await,
    );
    let token = publish["token"].as_str().expect("token");
    let robot_h =
        spawn_viewer_client_ready(connect(&bed, Endpoint::Whip, &room, token).await).await;
    robot_h.send_event(r#"{"type":"telemetry","battery":0.73,"link_quality":0.9}"#);
    let (seen, at) = until_live(&bed, &outsider.token, robot, SOON * 2, |v| {
        v["online"] == true && v["battery"].is_number()
    })
    .await;
    assert!(at.is_some(), "online with its battery: {seen}");
    assert!((seen["battery"].as_f64().unwrap() - 0.73).abs() < 1e-3);
    assert_eq!(seen["link"]["transport"], "udp");
    assert_eq!(
        seen["counts"],
        json!({"robot": 1, "doctors": 0, "observers": 0})
    );

    // A doctor books now and joins: listed by name for the admin, counted for others.
    let booking = bed
        .book_from_now(
            &doctor.token,
            robot,
            chrono::Duration::zero(),
            chrono::Duration::minutes(30),
        )
        .await;
    let join = bed.join_ok(&doctor.token, &booking).await;
    let viewer = spawn_viewer_client_ready(
        connect(&bed, Endpoint::Whep, &room, join["token"].as_str().unwrap()).await,
    )
    .await;
    let session = viewer.session_id.clone();
    let (seen, at) = until_live(&bed, &admin.token, robot, SOON, |v| {
        v["participants"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["session"] == session.as_str()))
    })
    .await;
    assert!(at.is_some(), "the doctor is listed: {seen}");
    let me = seen["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["session"] == session.as_str())
        .unwrap()
        .clone();
    assert_eq!(me["name"], "Test doctor");
    assert_eq!(me["role"], "doctor");
    let rooms = expect(StatusCode::OK, bed.get("/api/rooms", &admin.token).await);
    assert_eq!(rooms[0]["robot"], room);
    assert_eq!(rooms[0]["node"], "local");
    let theirs = live_of(&bed, &outsider.token, robot).await;
    assert_eq!(theirs["counts"]["doctors"], 1);
    assert!(theirs.get("participants").is_none(), "{theirs}");
    let mine = live_of(&bed, &doctor.token, robot).await;
    assert_eq!(mine["booking"]["yours"], true);
    assert!(mine["participants"].is_array());

    // The admin ends the doctor's session: the doctor is told, and it is gone from the view.
    let asked = Instant::now();
    expect(
        StatusCode::ACCEPTED,
        bed.post(
            &format!("/api/rooms/{robot}/participants/{session}/end"),
            &admin.token,
            json!({}),
        )
        .await,
    );
    let told = viewer
        .wait_event(SOON, |e| {
            e["type"] == "error" && e["code"] == "session_ended"
        })
        .await
        .expect("the doctor hears why");
    assert_eq!(told["message"], "an administrator ended your session");
    let (seen, gone) = until_live(&bed, &admin.token, robot, SOON, |v| {
        v["participants"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["session"] != session.as_str()))
    })
    .await;
    let gone = gone.unwrap_or_else(|| panic!("still listed after {SOON:?}: {seen}"));
    println!(
        "ended session gone from the live view {:?} after the request",
        gone - asked
    );
    let audited = bed
        .audit_kind(&admin.token, "room.session_ended_by_admin")
        .await;
    assert_eq!(audited.len(), 1);
    let _ = viewer.finish().await;

    // The robot leaves: offline.
    let left = Instant::now();
    robot_h.stop().await;
    let (seen, off) =
        until_live(&bed, &outsider.token, robot, SOON, |v| v["online"] == false).await;
    let off = off.unwrap_or_else(|| panic!("still online: {seen}"));
    println!("robot offline {:?} after it left", off - left);
    assert!(seen.get("battery").is_none(), "{seen}");
    let rooms = expect(StatusCode::OK, bed.get("/api/rooms", &admin.token).await);
    assert_eq!(rooms, json!([]));
}
