//! The cluster layout for real: `bedside api` and `bedside sfu` as two processes of the built
//! binary, joined only by the node channel over HTTP (the node secret, the command stream, the
//! report endpoint). A cancel made at the API ends the session on the media node, an admin's
//! lease revoke reaches the room there, and the room's lease changes and e-stops reach the API's
//! audit log and its record of latched rooms.

mod common;

use std::time::Duration;

use bedside_api::testing::{expect, minutes, PASSWORD};
use bedside_sfu::client::{Endpoint, WebRtcClient};
use common::cluster::{spawn_api, spawn_sfu, ADMIN};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", auth)
            .json(&body)
            .send()
            .await
            .expect("the API answers");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, &format!("Bearer {token}"), body)
            .await
    }

    async fn login(&self, username: &str) -> String {
        let body = json!({ "username": username, "password": PASSWORD });
        let r = expect(
            StatusCode::OK,
            self.call(Method::POST, "/api/auth/login", "", body).await,
        );
        r["access_token"].as_str().expect("token").to_string()
    }

    /// Wait (up to 10 s) for an audit entry of `kind` in `room`.
    async fn audited(&self, admin: &str, kind: &str, room: &str) -> Vec<Value> {
        for _ in 0..200 {
            let (_, page) = self
                .call(
                    Method::GET,
                    &format!("/api/audit?kind={kind}&room={room}"),
                    &format!("Bearer {admin}"),
                    Value::Null,
                )
                .await;
            let entries = page["entries"].as_array().cloned().unwrap_or_default();
            if !entries.is_empty() {
                return entries;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Vec::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_media_node_as_two_processes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("api");
    let (_api_proc, api_base) = spawn_api(dir.path(), "api", &data).await;
    let api = Api {
        base: api_base,
        http: reqwest::Client::new(),
    };
    let (_sfu_proc, sfu_base) = spawn_sfu(dir.path(), "sfu", &api.base, &[], &[]).await;

    // People and a robot, through the API as an admin would.
    let admin = api.login(ADMIN).await;
    let body = json!({"username": "dr-split", "display_name": "Dr Split", "password": PASSWORD, "role": "doctor"});
    expect(
        StatusCode::CREATED,
        api.post("/api/users", &admin, body).await,
    );
    let created = expect(
        StatusCode::CREATED,
        api.post("/api/robots", &admin, json!({"name": "R", "ward": "W"}))
            .await,
    );
    let room = created["robot"]["id"].as_str().unwrap().to_string();
    let credential = created["credential"].as_str().unwrap().to_string();
    let doctor = api.login("dr-split").await;

    // The robot publishes to the media node with a token from the API.
    let (status, publish) = api
        .call(
            Method::POST,
            &format!("/api/robots/{room}/publish-token"),
            &format!("Robot {credential}"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{publish}");
    let robot = WebRtcClient::connect(
        &sfu_base,
        Endpoint::Whip,
        &room,
        publish["token"].as_str().unwrap(),
        LOCALHOST,
    )
    .await
    .expect("the media node admits the robot");
    let robot = spawn_robot_ready(robot).await;

    // A doctor books, joins at the media node and drives: the lease change reaches the API.
    let now = chrono::Utc::now();
    let slot = |m: i64| bedside_api::testing::rfc3339(now + minutes(m));
    let booking = expect(
        StatusCode::CREATED,
        api.post(
            "/api/bookings",
            &doctor,
            json!({"robot_id": room, "starts_at": slot(0), "ends_at": slot(30)}),
        )
        .await,
    );
    let id = booking["id"].as_str().unwrap().to_string();
    let join = |token: String| {
        let api = &api;
        let id = id.clone();
        async move {
            api.post(&format!("/api/bookings/{id}/join"), &token, json!({}))
                .await
        }
    };
    let joined = expect(StatusCode::OK, join(doctor.clone()).await);
    let viewer = WebRtcClient::connect(
        &sfu_base,
        Endpoint::Whep,
        &room,
        joined["token"].as_str().unwrap(),
        LOCALHOST,
    )
    .await
    .expect("the media node admits the doctor");
    let viewer = spawn_viewer_client_ready(viewer).await;
    take_lease(&viewer).await;
    let leases = api.audited(&admin, "room.lease_changed", &room).await;
    assert!(
        !leases.is_empty(),
        "the lease change is in the API's audit log"
    );

    // An e-stop latched in the room is audited and recorded as a latched room at the API.
    viewer.send_event(r#"{"type":"estop"}"#);
    let latched = api.audited(&admin, "room.estop_latched", &room).await;
    assert_eq!(latched.len(), 1, "the e-stop is in the API's audit log");
    viewer.send_event(r#"{"type":"estop_clear"}"#);
    let cleared = api.audited(&admin, "room.estop_cleared", &room).await;
    assert_eq!(cleared.len(), 1);

    // An admin's lease revoke at the API reaches the room on the media node.
    let answer = expect(
        StatusCode::OK,
        api.post(
            &format!("/api/robots/{room}/lease/revoke"),
            &admin,
            json!({}),
        )
        .await,
    );
    assert_eq!(answer["booking"], json!(id));
    viewer
        .wait_event(Duration::from_secs(5), |e| {
            e["type"] == "lease" && e["reason"] == "revoked" && e["holder"].is_null()
        })
        .await
        .expect("the lease is revoked on the media node");

    // A cancel at the API ends the session on the media node, and its token stays refused.
    expect(
        StatusCode::OK,
        api.post(&format!("/api/bookings/{id}/cancel"), &doctor, json!({}))
            .await,
    );
    viewer
        .wait_event(Duration::from_secs(2), |e| {
            e["type"] == "error" && e["code"] == "booking_cancelled"
        })
        .await
        .expect("the media node ended the session");
    let refused = WebRtcClient::connect(
        &sfu_base,
        Endpoint::Whep,
        &room,
        joined["token"].as_str().unwrap(),
        LOCALHOST,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(bedside_sfu::client::ClientError::Refused { status: 401, .. })
        ),
        "the cancelled booking's token is refused"
    );
    // The media node's own count agrees.
    let metrics = reqwest::get(format!("{sfu_base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric_sample(&metrics, "bedside_sessions{role=\"doctor\"}"),
        Some(0.0),
        "the doctor's gauge is there, and 0"
    );

    let _ = viewer.finish().await;
    robot.stop().await;
}
