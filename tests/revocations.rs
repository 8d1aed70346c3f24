//! The API's authority reaching live sessions, end to end in one process (`bedside serve`: API,
//! SFU and the node channel between them) with real str0m peers over UDP: a cancelled booking,
//! a removed invitation, an admin's lease revoke, a rotated robot credential and a disabled user
//! each end (or strip control from) exactly the sessions they name, at once, and their tokens
//! stay refused.

mod common;

use std::time::Duration;

use bedside_api::testing::{expect, Client, TestUser};
use bedside_api::UserRole;
use bedside_sfu::client::{ClientError, Endpoint, WebRtcClient};
use bedside_sfu::Sfu;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// How long a revocation may take to reach a live session.
const AT_ONCE: Duration = Duration::from_secs(2);

/// A running `bedside serve` and a client of its API.
struct Bed {
    client: Client,
    sfu: Sfu,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Bed {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Bed {
    async fn start() -> Bed {
        let one_process::Local {
            running,
            client,
            dir,
        } = one_process::serve_local(|_| {}).await;
        Bed {
            client,
            sfu: running.sfu.clone().expect("an SFU"),
            _dir: dir,
        }
    }

    /// A publish token for `robot` from its credential.
    async fn publish_token(&self, robot: Uuid, credential: &str) -> String {
        let r = expect(
            StatusCode::OK,
            self.call(
                Method::POST,
                &format!("/api/robots/{robot}/publish-token"),
                Some(&format!("Robot {credential}")),
                None,
            )
            .await,
        );
        r["token"].as_str().expect("token").to_string()
    }

    /// Offer with `token` at WHIP or WHEP; the client, or the refusal's status.
    async fn offer(
        &self,
        endpoint: Endpoint,
        room: &str,
        token: &str,
    ) -> Result<WebRtcClient, u16> {
        match WebRtcClient::connect(&self.base, endpoint, room, token, LOCALHOST).await {
            Ok(c) => Ok(c),
            Err(ClientError::Refused { status, .. }) => Err(status),
            Err(e) => panic!("{e}"),
        }
    }

    /// The robot publishing with `token`.
    async fn robot_live(&self, room: &str, token: &str) -> RobotHandle {
        let client = self
            .offer(Endpoint::Whip, room, token)
            .await
            .expect("robot admitted");
        spawn_robot_ready(client).await
    }

    /// A participant watching with the token of a `/join` answer.
    async fn watch(&self, room: &str, join: &Value) -> ViewerHandle {
        let client = self
            .offer(Endpoint::Whep, room, token(join))
            .await
            .expect("viewer admitted");
        spawn_viewer_client_ready(client).await
    }

    /// The `bedside_sessions` gauge of `role`; `None` while no session of that role was ever
    /// admitted (so that "0" means a session came and went).
    fn sessions(&self, role: &str) -> Option<f64> {
        metric_sample(
            &self.sfu.metrics().render(),
            &format!("bedside_sessions{{role=\"{role}\"}}"),
        )
    }
}

fn token(join: &Value) -> &str {
    join["token"].as_str().expect("a join token")
}

/// Wait for an `error` event with `code` at `v`.
async fn told(v: &ViewerHandle, code: &str) -> bool {
    v.wait_event(AT_ONCE, |e| e["type"] == "error" && e["code"] == code)
        .await
        .is_some()
}

/// Drive frames with `marker` the robot received.
fn frames_with(robot: &RobotHandle, marker: i16) -> usize {
    robot_frames(robot)
        .iter()
        .filter(|(_, f)| f.linear_x == marker)
        .count()
}

fn drive_frame(seq: u32, marker: i16) -> Vec<u8> {
    bedside_proto::ControlFrame::drive(seq, seq * 20, marker, 0, 0)
        .encode()
        .to_vec()
}

async fn people(bed: &Bed) -> (TestUser, TestUser, TestUser) {
    (
        bed.user(UserRole::Admin).await,
        bed.user(UserRole::Doctor).await,
        bed.user(UserRole::Doctor).await,
    )
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_booking_ends_its_session_and_frees_the_robot() {
    let bed = Bed::start().await;
    let (admin, d1, d2) = people(&bed).await;
    let (robot, credential) = bed.robot().await;
    let room = robot.to_string();
    let robot_h = bed
        .robot_live(&room, &bed.publish_token(robot, &credential).await)
        .await;

    let b1 = bed
        .book_from_now(&d1.token, robot, minutes(0), minutes(30))
        .await;
    let j1 = bed.join_ok(&d1.token, &b1).await;
    assert_eq!(j1["can_control"], true);
    let v1 = bed.watch(&room, &j1).await;
    take_lease(&v1).await;
    drive(&v1, 101, 1, 10).await;
    assert!(
        wait_until(AT_ONCE, || frames_with(&robot_h, 101) > 0).await,
        "D1 drives"
    );

    // An administrator cancels D1's booking: D1's session is told why and ended at once.
    bed.cancel_ok(&admin.token, &b1).await;
    assert!(told(&v1, "booking_cancelled").await, "{:?}", v1.events());
    assert!(
        wait_until(AT_ONCE, || bed.sessions("doctor") == Some(0.0)).await,
        "D1's session is gone"
    );

    // D2 books the freed slot and joins; D1's frames from now on reach nothing.
    let b2 = bed
        .book_from_now(&d2.token, robot, minutes(0), minutes(30))
        .await;
    let j2 = bed.join_ok(&d2.token, &b2).await;
    assert_eq!(j2["can_control"], true);
    let v2 = bed.watch(&room, &j2).await;
    for seq in 11..31 {
        v1.try_send_control(drive_frame(seq, 202));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let epoch = take_lease(&v2).await;
    assert!(epoch > 0);
    drive(&v2, 303, 1, 10).await;
    assert!(
        wait_until(AT_ONCE, || frames_with(&robot_h, 303) > 0).await,
        "D2 drives"
    );
    assert_eq!(frames_with(&robot_h, 202), 0, "nothing of D1's arrived");
    let holders: Vec<Value> = v2
        .events()
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|e| e["type"] == "lease")
        .map(|e| e["holder"].clone())
        .collect();
    assert!(
        holders.iter().all(|h| *h != json!(v1.session_id)),
        "D1 never held the lease again: {holders:?}"
    );

    // D1's old token and a fresh join on the cancelled booking both fail.
    assert_eq!(
        bed.offer(Endpoint::Whep, &room, token(&j1)).await.err(),
        Some(401)
    );
    let (status, body) = bed.join(&d1.token, &b1).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("booking_cancelled"))
    );
    // Nor may D1 use D2's booking.
    assert_eq!(bed.join(&d1.token, &b2).await.0, StatusCode::NOT_FOUND);

    let _ = v1.finish().await;
    v2.stop().await;
    robot_h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_observer_is_shown_out() {
    let bed = Bed::start().await;
    let (_, doctor, _) = people(&bed).await;
    let student = bed.user(UserRole::Student).await;
    let (robot, credential) = bed.robot().await;
    let room = robot.to_string();
    let robot_h = bed
        .robot_live(&room, &bed.publish_token(robot, &credential).await)
        .await;
    let booking = bed
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    bed.invite_ok(&doctor.token, &booking, student.id, "observer")
        .await;
    let jd = bed.join_ok(&doctor.token, &booking).await;
    let js = bed.join_ok(&student.token, &booking).await;
    let vd = bed.watch(&room, &jd).await;
    let vs = bed.watch(&room, &js).await;
    assert!(wait_until(AT_ONCE, || bed.sessions("observer") == Some(1.0)).await);

    let path = format!(
        "/api/bookings/{}/invitations/{}",
        booking["id"].as_str().unwrap(),
        student.id
    );
    expect(
        StatusCode::NO_CONTENT,
        bed.delete(&path, &doctor.token).await,
    );
    assert!(told(&vs, "invitation_removed").await, "{:?}", vs.events());
    assert!(wait_until(AT_ONCE, || bed.sessions("observer") == Some(0.0)).await);
    assert_eq!(
        bed.offer(Endpoint::Whep, &room, token(&js)).await.err(),
        Some(401)
    );
    // The doctor is untouched and still watching.
    assert_eq!(bed.sessions("doctor"), Some(1.0));
    assert!(vd
        .events()
        .iter()
        .all(|e| !e.contains("invitation_removed")));
    let seen = vd.video().len();
    assert!(
        wait_until(AT_ONCE, || vd.video().len() > seen).await,
        "video still flows"
    );

    let _ = vs.finish().await;
    vd.stop().await;
    robot_h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_holder_cannot_take_control_back_without_a_new_booking() {
    let bed = Bed::start().await;
    let (admin, doctor, _) = people(&bed).await;
    let (robot, credential) = bed.robot().await;
    let room = robot.to_string();
    let robot_h = bed
        .robot_live(&room, &bed.publish_token(robot, &credential).await)
        .await;
    let booking = bed
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    let v = bed
        .watch(&room, &bed.join_ok(&doctor.token, &booking).await)
        .await;
    let granted = take_lease(&v).await;

    let revoked = std::time::Instant::now();
    let answer = expect(
        StatusCode::OK,
        bed.post(
            &format!("/api/robots/{robot}/lease/revoke"),
            &admin.token,
            json!({}),
        )
        .await,
    );
    assert_eq!(answer["booking"], booking["id"]);
    let ev = v
        .wait_event(AT_ONCE, |e| {
            e["type"] == "lease" && e["reason"] == "revoked" && e["holder"].is_null()
        })
        .await
        .expect("the lease is taken away");
    // The robot is told to stop first, in the lease's new epoch, not only the room.
    let epoch = ev["epoch"].as_u64().expect("epoch");
    assert!(epoch > granted, "{ev}");
    let stopped = || {
        robot_frames(&robot_h).iter().any(|(t, f)| {
            *t >= revoked && f.kind == bedside_proto::FrameKind::Stop && u64::from(f.epoch) == epoch
        })
    };
    assert!(
        wait_until(AT_ONCE, stopped).await,
        "a stop frame for epoch {epoch} reached the robot: {:?}",
        robot_frames(&robot_h)
    );

    // Asking for it again, in the same session or in a new one, is refused.
    let no_holder = |v: &ViewerHandle| {
        let v_events = v.events();
        v_events.iter().filter(|e| e.contains("no_holder")).count()
    };
    let before = no_holder(&v);
    v.send_event(r#"{"type":"request_lease"}"#);
    assert!(
        wait_until(AT_ONCE, || no_holder(&v) > before).await,
        "{:?}",
        v.events()
    );
    let again = bed.join_ok(&doctor.token, &booking).await;
    assert_eq!(
        again["can_control"], false,
        "the booking lost control for good"
    );
    let v2 = bed.watch(&room, &again).await;
    v2.send_event(r#"{"type":"request_lease"}"#);
    assert!(
        wait_until(AT_ONCE, || no_holder(&v2) > 0).await,
        "{:?}",
        v2.events()
    );
    let mine = |v: &ViewerHandle| {
        let id = format!("\"holder\":\"{}\"", v.session_id);
        v.events().iter().any(|e| e.contains(&id))
    };
    assert!(!mine(&v2), "never granted");

    // A new booking (this one given up) gives control back.
    bed.cancel_ok(&doctor.token, &booking).await;
    assert!(told(&v2, "booking_cancelled").await);
    let fresh = bed
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    let joined = bed.join_ok(&doctor.token, &fresh).await;
    assert_eq!(joined["can_control"], true);
    let v3 = bed.watch(&room, &joined).await;
    take_lease(&v3).await;
    drive(&v3, 404, 1, 10).await;
    assert!(wait_until(AT_ONCE, || frames_with(&robot_h, 404) > 0).await);

    let _ = v.finish().await;
    let _ = v2.finish().await;
    v3.stop().await;
    robot_h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_publish_token_cannot_come_back_after_rotation() {
    let bed = Bed::start().await;
    let (admin, doctor, _) = people(&bed).await;
    let (robot, credential) = bed.robot().await;
    let room = robot.to_string();
    let old = bed.publish_token(robot, &credential).await;
    let first = bed.robot_live(&room, &old).await;
    let booking = bed
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    let v = bed
        .watch(&room, &bed.join_ok(&doctor.token, &booking).await)
        .await;
    assert!(
        wait_until(AT_ONCE, || !v.video().is_empty()).await,
        "the robot is seen"
    );

    let rotated = expect(
        StatusCode::OK,
        bed.post(
            &format!("/api/robots/{robot}/credential"),
            &admin.token,
            json!({}),
        )
        .await,
    );
    // The robot's session made with the old credential's token ends at once.
    assert!(
        wait_until(AT_ONCE, || first
            .log
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("credential_rotated")))
        .await,
        "the robot is told"
    );
    assert!(wait_until(AT_ONCE, || bed.sessions("robot") == Some(0.0)).await);
    assert_eq!(
        bed.offer(Endpoint::Whip, &room, &old).await.err(),
        Some(401)
    );

    // The robot comes back with its new credential (tokens are cut by the second: wait for the
    // next one) and the doctor sees it again.
    let next_second = 1000 - (chrono::Utc::now().timestamp_subsec_millis() as u64 % 1000) + 50;
    tokio::time::sleep(Duration::from_millis(next_second)).await;
    let new = bed
        .publish_token(robot, rotated["credential"].as_str().unwrap())
        .await;
    let second = bed.robot_live(&room, &new).await;
    let seen = v.video().len();
    assert!(
        wait_until(AT_ONCE, || v.video().len() > seen).await,
        "video again"
    );

    // The old token can neither join nor take the room from the live robot.
    assert_eq!(
        bed.offer(Endpoint::Whip, &room, &old).await.err(),
        Some(401)
    );
    assert_eq!(bed.sessions("robot"), Some(1.0));
    let seen = v.video().len();
    assert!(
        wait_until(AT_ONCE, || v.video().len() > seen).await,
        "still the live robot"
    );
    assert!(second
        .log
        .events
        .lock()
        .unwrap()
        .iter()
        .all(|e| !e.contains("credential_rotated")));

    let _ = first.finish().await;
    v.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_doctor_is_shown_out() {
    let bed = Bed::start().await;
    let (admin, doctor, colleague) = people(&bed).await;
    let (robot, credential) = bed.robot().await;
    let room = robot.to_string();
    let robot_h = bed
        .robot_live(&room, &bed.publish_token(robot, &credential).await)
        .await;
    let booking = bed
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    bed.invite_ok(&doctor.token, &booking, colleague.id, "consultant")
        .await;
    let jd = bed.join_ok(&doctor.token, &booking).await;
    let vd = bed.watch(&room, &jd).await;
    let vc = bed
        .watch(&room, &bed.join_ok(&colleague.token, &booking).await)
        .await;
    take_lease(&vd).await;

    expect(
        StatusCode::OK,
        bed.post(
            &format!("/api/users/{}/disable", doctor.id),
            &admin.token,
            json!({}),
        )
        .await,
    );
    assert!(told(&vd, "user_disabled").await, "{:?}", vd.events());
    assert!(
        wait_until(AT_ONCE, || bed.sessions("doctor") == Some(1.0)).await,
        "only the colleague"
    );
    assert_eq!(
        bed.get("/api/me", &doctor.token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bed.offer(Endpoint::Whep, &room, token(&jd)).await.err(),
        Some(401)
    );
    // The colleague stays, and hears that the lease was freed.
    vc.wait_event(AT_ONCE, |e| e["type"] == "lease" && e["holder"].is_null())
        .await
        .expect("the lease is free again");
    assert!(vc.events().iter().all(|e| !e.contains("user_disabled")));

    let _ = vd.finish().await;
    vc.stop().await;
    robot_h.stop().await;
}
