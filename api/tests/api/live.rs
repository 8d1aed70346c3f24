//! Live status at the API: what a media node reports about a room becomes each robot's live
//! state, shown to each caller as far as they may see it (names only to the booking's people and
//! admins), the admins' room list, an admin ending one session through the node channel
//! (audited), and rooms going offline when closed or when their node stops refreshing them.

use std::time::Duration;

use bedside_api::UserRole;
use bedside_proto::node::NodeCommand;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, id_of, minutes, Backend, TestApp};

backend_tests!(
    live_status_from_node_reports,
    ended_sessions_and_stale_rooms
);

const SECRET: &str = "a-node-secret-for-live-tests";

fn with_secret(c: &mut bedside_api::ApiConfig) {
    c.node_secret = Some(SECRET.into());
}

async fn report(app: &TestApp, reports: Value) {
    let (status, body) = app
        .call(
            Method::POST,
            "/internal/node/reports",
            Some(&format!("Bearer {SECRET}")),
            Some(&reports),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// A room status report: the robot, and a doctor and a student in the room.
fn room_status(room: &str, doctor: &str, student: &str, robot: &str, closed: bool) -> Value {
    json!({ "type": "room_status", "status": {
        "room": room, "node": "node-a", "closed": closed, "refresh_secs": 10,
        "robot_online": !closed, "battery": 0.8,
        "link": { "transport": "udp", "loss": 0.02, "rtt_ms": 31 },
        "estop": { "latched": false, "robot": false },
        "lease": { "sub": doctor, "session": "s2", "role": "doctor" },
        "participants": if closed { json!([]) } else { json!([
            { "session": "s1", "sub": robot, "role": "robot", "transport": "udp" },
            { "session": "s2", "sub": doctor, "role": "doctor", "transport": "tcp" },
            { "session": "s3", "sub": student, "role": "observer" },
        ]) },
    }})
}

/// The caller's view of `robot` in `GET /api/robots/live`.
async fn live_of(app: &TestApp, token: &str, robot: uuid::Uuid) -> Value {
    let list = expect(StatusCode::OK, app.get("/api/robots/live", token).await);
    list.as_array()
        .expect("a list")
        .iter()
        .find(|r| r["robot"] == robot.to_string())
        .cloned()
        .expect("every robot is listed")
}

async fn live_status_from_node_reports(backend: Backend) {
    let app = TestApp::start_with(backend, with_secret).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let outsider = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let (robot, _) = app.robot().await;
    let (idle, _) = app.robot().await;
    let booking = app
        .book_ok(
            &doctor.token,
            robot,
            crate::common::from_now(minutes(2)),
            crate::common::from_now(minutes(62)),
        )
        .await;
    app.invite_ok(&doctor.token, &booking, student.id, "observer")
        .await;

    // Before any report: every robot offline, nobody in any room.
    let before = live_of(&app, &outsider.token, robot).await;
    assert_eq!(before["online"], false);
    assert_eq!(before["counts"]["doctors"], 0);
    let room = robot.to_string();
    let (d, s) = (doctor.id.to_string(), student.id.to_string());
    report(&app, json!([room_status(&room, &d, &s, &room, false)])).await;

    // The booking's doctor sees who is there, by name, and who drives.
    let mine = live_of(&app, &doctor.token, robot).await;
    assert_eq!(mine["online"], true);
    assert!((mine["battery"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    assert_eq!(mine["link"]["transport"], "udp");
    assert_eq!(mine["link"]["rtt_ms"], 31);
    assert_eq!(mine["booking"]["yours"], true);
    assert_eq!(mine["booking"]["id"], id_of(&booking).to_string());
    let people = mine["participants"].as_array().expect("participants");
    assert_eq!(people.len(), 3);
    assert_eq!(people[0]["name"], "Robo");
    assert_eq!(people[1]["name"], "Test doctor");
    assert_eq!(people[1]["driving"], true);
    assert_eq!(people[2]["name"], "Test student");
    assert_eq!(people[2]["role"], "observer");

    // Another doctor: online, battery, the slot and head counts, but not who.
    let theirs = live_of(&app, &outsider.token, robot).await;
    assert_eq!(theirs["online"], true);
    assert_eq!(
        theirs["counts"],
        json!({"robot": 1, "doctors": 1, "observers": 1})
    );
    assert_eq!(theirs["driving"], true);
    assert_eq!(theirs["booking"]["yours"], false);
    for hidden in ["participants", "node", "updated_at"] {
        assert!(theirs.get(hidden).is_none(), "{hidden} shown: {theirs}");
    }
    assert!(theirs["booking"].get("id").is_none(), "{theirs}");
    let text = theirs.to_string();
    assert!(
        !text.contains(&d) && !text.contains("Test doctor"),
        "{text}"
    );
    assert_eq!(live_of(&app, &outsider.token, idle).await["online"], false);

    // Admins: the room list, with names and the node.
    let rooms = expect(StatusCode::OK, app.get("/api/rooms", &admin.token).await);
    let rooms = rooms.as_array().expect("rooms");
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(rooms[0]["robot"], room);
    assert_eq!(rooms[0]["robot_name"], "Robo");
    assert_eq!(rooms[0]["node"], "node-a");
    assert_eq!(rooms[0]["participants"][1]["sub"], d);
    let (status, _) = app.get("/api/rooms", &doctor.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A hostile node report (a room id with a newline) is dropped, the rest is taken.
    let mut bad = room_status("x\ny", &d, &s, &room, false);
    bad["status"]["room"] = json!("x\ny");
    report(&app, json!([bad])).await;
    let rooms = expect(StatusCode::OK, app.get("/api/rooms", &admin.token).await);
    assert_eq!(rooms.as_array().map(Vec::len), Some(1));

    // The room closes: offline at once.
    report(&app, json!([room_status(&room, &d, &s, &room, true)])).await;
    let after = live_of(&app, &doctor.token, robot).await;
    assert_eq!(after["online"], false);
    assert_eq!(after["participants"], json!([]));
    assert!(after.get("battery").is_none());
    let rooms = expect(StatusCode::OK, app.get("/api/rooms", &admin.token).await);
    assert_eq!(rooms, json!([]));
}

async fn ended_sessions_and_stale_rooms(backend: Backend) {
    let app = TestApp::start_with(backend, with_secret).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;
    let (robot, _) = app.robot().await;
    let room = robot.to_string();
    let (d, s) = (doctor.id.to_string(), student.id.to_string());
    let mut stream = app
        .http
        .get(app.url("/internal/node/stream"))
        .bearer_auth(SECRET)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    report(&app, json!([room_status(&room, &d, &s, &room, false)])).await;

    let end = |session: &str| format!("/api/rooms/{robot}/participants/{session}/end");
    // Refused: not an admin; not a session id; no such session; no such room.
    let (st, _) = app.post(&end("s3"), &doctor.token, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, body) = app.post(&end("3"), &admin.token, json!({})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (st, _) = app.post(&end("s9"), &admin.token, json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let other = uuid::Uuid::new_v4();
    let (st, _) = app
        .post(
            &format!("/api/rooms/{other}/participants/s3/end"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let ended = expect(
        StatusCode::ACCEPTED,
        app.post(&end("s3"), &admin.token, json!({})).await,
    );
    assert_eq!(ended["sub"], s);
    assert_eq!(ended["node"], "node-a");
    // The node following the stream is told to end exactly that session.
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let told = loop {
        if let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let cmd: NodeCommand = serde_json::from_slice(&line).expect("a command");
            if let NodeCommand::EndSession { .. } = cmd {
                break cmd;
            }
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the command in time")
            .expect("readable")
            .expect("not ended");
        buf.extend_from_slice(&chunk);
    };
    assert_eq!(
        told,
        NodeCommand::EndSession {
            room: room.clone(),
            session: "s3".into()
        }
    );
    let audited = app
        .audit_kind(&admin.token, "room.session_ended_by_admin")
        .await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["actor"], admin.id.to_string());
    assert_eq!(audited[0]["room"], room);
    assert_eq!(audited[0]["detail"]["sub"], s);

    // The node stops refreshing: after three periods (3 x 10 s) the robot is offline.
    app.clock.advance(chrono::Duration::seconds(29));
    assert_eq!(live_of(&app, &doctor.token, robot).await["online"], true);
    app.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(live_of(&app, &doctor.token, robot).await["online"], false);
    let rooms = expect(StatusCode::OK, app.get("/api/rooms", &admin.token).await);
    assert_eq!(rooms, json!([]));
    let (st, _) = app.post(&end("s2"), &admin.token, json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing live to end");
}
