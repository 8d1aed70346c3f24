//! A media node that dies takes its rooms offline in the API's live view by itself: `bedside api`
//! and `bedside sfu` as two processes of the built binary (room status refreshed every second
//! here), a robot online with its battery on the node, then the node killed without a word: the
//! API forgets the room once three refreshes are missed.

mod common;

use std::time::{Duration, Instant};

use bedside_api::testing::{expect, PASSWORD};
use bedside_sfu::client::{Endpoint, WebRtcClient};
use common::cluster::{spawn_api, spawn_sfu, ADMIN};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn call(
    base: &str,
    method: Method,
    path: &str,
    auth: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("authorization", auth)
        .json(&body)
        .send()
        .await
        .expect("the API answers");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The admin's view of the live rooms.
async fn rooms(base: &str, admin: &str) -> Vec<Value> {
    let list = expect(
        StatusCode::OK,
        call(
            base,
            Method::GET,
            "/api/rooms",
            &format!("Bearer {admin}"),
            Value::Null,
        )
        .await,
    );
    list.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_media_node_takes_its_rooms_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("api");
    let (_api_proc, api) = spawn_api(dir.path(), "api", &data).await;
    let (mut sfu_proc, sfu) = spawn_sfu(
        dir.path(),
        "sfu",
        &api,
        &[],
        &[
            ("BEDSIDE_NODE_ID", "node-x"),
            ("BEDSIDE_STATUS_REFRESH_SECS", "1"),
        ],
    )
    .await;

    let login = json!({ "username": ADMIN, "password": PASSWORD });
    let token = expect(
        StatusCode::OK,
        call(&api, Method::POST, "/api/auth/login", "", login).await,
    );
    let admin = token["access_token"].as_str().expect("token").to_string();
    let created = expect(
        StatusCode::CREATED,
        call(
            &api,
            Method::POST,
            "/api/robots",
            &format!("Bearer {admin}"),
            json!({"name": "R", "ward": "W"}),
        )
        .await,
    );
    let room = created["robot"]["id"].as_str().unwrap().to_string();
    let credential = created["credential"].as_str().unwrap();
    let publish = expect(
        StatusCode::OK,
        call(
            &api,
            Method::POST,
            &format!("/api/robots/{room}/publish-token"),
            &format!("Robot {credential}"),
            Value::Null,
        )
        .await,
    );
    let robot = WebRtcClient::connect(
        &sfu,
        Endpoint::Whip,
        &room,
        publish["token"].as_str().unwrap(),
        LOCALHOST,
    )
    .await
    .expect("the media node admits the robot");
    let robot = spawn_viewer_client_ready(robot).await;
    robot.send_event(r#"{"type":"telemetry","battery":0.5}"#);

    // Online with its battery, reported by node-x.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = rooms(&api, &admin).await;
        if list
            .iter()
            .any(|r| r["robot"] == room.as_str() && r["online"] == true && r["battery"] == 0.5)
        {
            assert_eq!(list[0]["node"], "node-x");
            break;
        }
        assert!(Instant::now() < deadline, "never online: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The node dies without a word: no closed report; the refreshes stop.
    sfu_proc.child.start_kill().expect("kill the node");
    let killed = Instant::now();
    let _ = sfu_proc.child.wait().await;
    let deadline = killed + Duration::from_secs(15);
    loop {
        let list = rooms(&api, &admin).await;
        if list.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still live 15 s after its node died: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = killed.elapsed();
    println!("the dead node's room left the live view {gone:?} after the kill (3 x 1 s refresh)");
    let (_, list) = call(
        &api,
        Method::GET,
        "/api/robots/live",
        &format!("Bearer {admin}"),
        Value::Null,
    )
    .await;
    let mine = list
        .as_array()
        .and_then(|l| l.iter().find(|r| r["robot"] == room.as_str()).cloned())
        .expect("listed");
    assert_eq!(mine["online"], false, "{mine}");
    let _ = robot.finish().await;
}
