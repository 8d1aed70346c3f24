//! WHIP/WHEP refusals: every bad request gets the right 4xx and a message, and never hurts a
//! room that is streaming.

mod common;

use std::time::Duration;

use bedside_proto::join_token::unix_now;
use bedside_proto::{Claims, KeyPair, Role};
use bedside_sfu::client::{ClientError, Endpoint, WebRtcClient};
use common::*;
use str0m::media::{Direction, MediaKind};

async fn status_of(sfu: &TestSfu, endpoint: Endpoint, room: &str, token: &str) -> u16 {
    match WebRtcClient::connect(&sfu.base, endpoint, room, token, LOCALHOST).await {
        Ok(c) => {
            let _ = c.close().await;
            201
        }
        Err(ClientError::Refused { status, body }) => {
            assert!(!body.trim().is_empty(), "a refusal says why");
            status
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked() {
    let sfu = TestSfu::start().await;
    let room = room();
    let other_room = common::room();

    let mut expired = Claims::new("u", &room, Role::Doctor, 60);
    expired.nbf = unix_now() - 7200;
    expired.exp = unix_now() - 3600;
    let mut future = Claims::new("u", &room, Role::Doctor, 60);
    future.nbf = unix_now() + 3600;
    future.exp = future.nbf + 60;
    let foreign = KeyPair::generate().expect("keys");
    let foreign_token = foreign
        .signer()
        .sign(&Claims::new("u", &room, Role::Robot, 60))
        .expect("sign");

    let cases: Vec<(&str, Endpoint, String, u16)> = vec![
        ("garbage token", Endpoint::Whep, "not-a-jwt".into(), 401),
        ("expired token", Endpoint::Whep, sfu.sign(&expired), 401),
        ("not yet valid", Endpoint::Whep, sfu.sign(&future), 401),
        ("other key", Endpoint::Whip, foreign_token, 401),
        (
            "other room",
            Endpoint::Whep,
            sfu.token(&other_room, Role::Doctor, "u"),
            403,
        ),
        (
            "observer publishes",
            Endpoint::Whip,
            sfu.token(&room, Role::Observer, "u"),
            403,
        ),
        (
            "doctor publishes",
            Endpoint::Whip,
            sfu.token(&room, Role::Doctor, "u"),
            403,
        ),
        (
            "robot subscribes",
            Endpoint::Whep,
            sfu.token(&room, Role::Robot, "r"),
            403,
        ),
        (
            "observer subscribes",
            Endpoint::Whep,
            sfu.token(&room, Role::Observer, "u"),
            201,
        ),
    ];
    for (name, endpoint, token, want) in cases {
        assert_eq!(
            status_of(&sfu, endpoint, &room, &token).await,
            want,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_4xx() {
    let sfu = TestSfu::start().await;
    let room = room();
    let token = sfu.token(&room, Role::Doctor, "u");
    let http = reqwest::Client::new();
    let url = format!("{}/whep/{room}", sfu.base);
    let post = |body: Vec<u8>, ct: &'static str, auth: Option<String>| {
        let mut r = http.post(&url).header("content-type", ct).body(body);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    let bearer = Some(format!("Bearer {token}"));
    let cases: Vec<(&str, reqwest::Response, u16)> = vec![
        (
            "no token",
            post(b"v=0\r\n".to_vec(), "application/sdp", None)
                .await
                .unwrap(),
            401,
        ),
        (
            "basic auth",
            post(
                b"v=0\r\n".to_vec(),
                "application/sdp",
                Some("Basic dTpw".into()),
            )
            .await
            .unwrap(),
            401,
        ),
        (
            "not sdp",
            post(b"{}".to_vec(), "application/json", bearer.clone())
                .await
                .unwrap(),
            400,
        ),
        (
            "garbage sdp",
            post(
                b"v=0\r\nm=nonsense\r\n".to_vec(),
                "application/sdp",
                bearer.clone(),
            )
            .await
            .unwrap(),
            400,
        ),
        (
            "binary",
            post(vec![0xff, 0xfe, 0x00], "application/sdp", bearer.clone())
                .await
                .unwrap(),
            400,
        ),
        (
            // Just over the limit: a body far bigger than the kernel's socket buffers races
            // the server's early 413 and close against the client's write (broken pipe).
            "oversized body",
            post(
                vec![b'a'; bedside_sfu::signalling::MAX_OFFER_BYTES + 4096],
                "application/sdp",
                bearer.clone(),
            )
            .await
            .unwrap(),
            413,
        ),
    ];
    for (name, resp, want) in cases {
        assert_eq!(resp.status().as_u16(), want, "{name}");
    }
    // A fresh connection: the server closes the one that sent the oversized body.
    let del = reqwest::Client::new()
        .delete(format!("{}/sessions/nope", sfu.base))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_robot_is_409_but_the_same_robot_may_reconnect() {
    let sfu = TestSfu::start().await;
    let room = room();
    let robot = sfu.start_robot(&room, "robot-1", 1).await;
    let viewer = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "d")).await;
    assert!(wait_until(Duration::from_secs(5), || !viewer.video().is_empty()).await);

    let intruder = sfu.token(&room, Role::Robot, "robot-2");
    assert_eq!(status_of(&sfu, Endpoint::Whip, &room, &intruder).await, 409);

    // The same robot (same subject) reconnecting replaces its old session.
    let again = sfu
        .connect(
            Endpoint::Whip,
            &room,
            &sfu.token(&room, Role::Robot, "robot-1"),
        )
        .await;
    let again = spawn_robot(again, 9000);
    // The viewer gets the new session's stream: a steady flow (over 20 packets in the last
    // 500 ms), whenever it comes.
    let recent = || {
        viewer.count_between(
            std::time::Instant::now() - Duration::from_millis(500),
            std::time::Instant::now(),
        )
    };
    assert!(
        wait_until(Duration::from_secs(10), || recent() > 20).await,
        "the viewer gets the new session's stream ({})",
        recent()
    );
    assert_eq!(sfu.metric("bedside_sessions{role=\"robot\"}"), 1.0);
    robot.vanish().await;
    again.stop().await;
    viewer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_worker_refuses_watchers_but_never_the_robot_or_the_driver() {
    let sfu = TestSfu::start_with(bedside_sfu::config::SfuConfig {
        max_viewers_per_worker: 2,
        ..Default::default()
    })
    .await;
    let room = room();
    let observer = |n: u32| sfu.token(&room, Role::Observer, &format!("student-{n}"));
    let mut watching = Vec::new();
    for n in 0..2 {
        // The cap counts connected watchers: these two finish ICE and DTLS first.
        watching.push(sfu.connect(Endpoint::Whep, &room, &observer(n)).await);
    }
    assert_eq!(
        status_of(&sfu, Endpoint::Whep, &room, &observer(3)).await,
        503
    );
    let mut consultant = Claims::new("consultant", &room, Role::Doctor, 600);
    consultant.can_control = false;
    assert_eq!(
        status_of(&sfu, Endpoint::Whep, &room, &sfu.sign(&consultant)).await,
        503,
        "a doctor who may not drive is a watcher"
    );
    // The booking doctor and the robot always get in.
    let driver = sfu.token(&room, Role::Doctor, "driver");
    assert_eq!(status_of(&sfu, Endpoint::Whep, &room, &driver).await, 201);
    let robot = sfu.token(&room, Role::Robot, "robot-1");
    assert_eq!(status_of(&sfu, Endpoint::Whip, &room, &robot).await, 201);
    // A watcher leaving frees its place.
    let first = watching.remove(0);
    let before = sfu.metric("bedside_sessions{role=\"observer\"}");
    first.close().await.expect("DELETE");
    assert!(
        wait_until(Duration::from_secs(3), || sfu
            .metric("bedside_sessions{role=\"observer\"}")
            < before)
        .await
    );
    assert_eq!(
        status_of(&sfu, Endpoint::Whep, &room, &observer(4)).await,
        201
    );
    for c in watching {
        let _ = c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_session() {
    let sfu = TestSfu::start().await;
    let room = room();
    let c = sfu
        .connect(Endpoint::Whep, &room, &sfu.token(&room, Role::Doctor, "d"))
        .await;
    assert_eq!(sfu.metric("bedside_sessions{role=\"doctor\"}"), 1.0);
    let url = c.session_url.clone();
    c.close().await.expect("delete");
    assert!(
        wait_until(Duration::from_secs(3), || sfu
            .metric("bedside_sessions{role=\"doctor\"}")
            == 0.0)
        .await,
        "the session ended"
    );
    let again = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 404, "a session ends once");
}

/// Everyone in a room sees everyone's public session id (`s7`, in presence and lease events);
/// only the secret key in the `Location` URL ends a session or restarts its ICE. A restart with
/// someone else's credentials would cut the victim off (its own ufrag refused from then on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_session_id_cannot_end_a_session() {
    let sfu = TestSfu::start().await;
    let room = room();
    let victim = spawn_viewer(&sfu, &room, &sfu.token(&room, Role::Doctor, "victim")).await;
    let public = victim.session_id.clone();
    assert!(public.starts_with('s'), "{public}");
    let http = reqwest::Client::new();
    let paths = [
        format!("/sessions/{public}"),
        format!("/sessions/{}", &public[1..]),
    ];
    for path in &paths {
        let r = http
            .delete(format!("{}{path}", sfu.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "DELETE {path}");
    }
    // An ICE restart (new credentials) and a plain trickle fragment, as docs/protocol.md has
    // them: both refused as if the session did not exist, before the body is even read.
    let restart = "a=ice-ufrag:Wq3f\r\na=ice-pwd:8mKQk1cZ0n5V3d9P2rXy7aLb\r\n";
    let trickle = "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";
    for path in &paths {
        for body in [restart, trickle] {
            let r = http
                .patch(format!("{}{path}", sfu.base))
                .header("content-type", "application/trickle-ice-sdpfrag")
                .header("if-match", "*")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert_eq!(status, 404, "PATCH {path} with {body:?}: {text}");
        }
    }
    assert_eq!(sfu.metric("bedside_sessions{role=\"doctor\"}"), 1.0);
    assert_eq!(
        sfu.sample("bedside_ice_restarts_total"),
        Some(0.0),
        "no ICE restart happened"
    );
    // Still connected on its own credentials: the room still hears it and answers.
    victim.send_event(r#"{"type":"ping","n":41}"#);
    assert!(
        victim
            .wait_event(Duration::from_secs(5), |e| e["type"] == "pong"
                && e["n"] == 41)
            .await
            .is_some(),
        "the victim's session still works: {:?}",
        victim.events()
    );
    victim.stop().await;
}

/// An offer the SFU cannot serve is a 400 that says why, never a session that carries nothing.
async fn refusal_of(
    sfu: &TestSfu,
    endpoint: Endpoint,
    room: &str,
    token: &str,
    lines: &[(MediaKind, Direction)],
) -> (u16, String) {
    match WebRtcClient::connect_with(&sfu.base, endpoint, room, token, LOCALHOST, lines).await {
        Ok(c) => {
            let _ = c.close().await;
            panic!("an unservable offer ({lines:?}) was answered");
        }
        Err(ClientError::Refused { status, body }) => (status, body),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_offering_only_to_send_is_400_nothing_to_receive() {
    let sfu = TestSfu::start().await;
    let room = room();
    let send_only = [
        (MediaKind::Audio, Direction::SendOnly),
        (MediaKind::Video, Direction::SendOnly),
    ];
    // A student's sending m-lines are answered inactive, so nothing is left at all; a
    // doctor's would be its microphone and camera, which is a session (it publishes).
    let (status, body) = refusal_of(
        &sfu,
        Endpoint::Whep,
        &room,
        &sfu.token(&room, Role::Observer, "student"),
        &send_only,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nothing to receive"), "{body}");
    assert_eq!(sfu.metric("bedside_sessions{role=\"observer\"}"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_offering_only_to_receive_is_400_must_send() {
    let sfu = TestSfu::start().await;
    let room = room();
    let recv_only = [
        (MediaKind::Video, Direction::RecvOnly),
        (MediaKind::Audio, Direction::RecvOnly),
    ];
    let (status, body) = refusal_of(
        &sfu,
        Endpoint::Whip,
        &room,
        &sfu.token(&room, Role::Robot, "robot-1"),
        &recv_only,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("must send"), "{body}");
    assert_eq!(sfu.metric("bedside_sessions{role=\"robot\"}"), 0.0);
    // The refusal took nothing: the robot publishes properly right after.
    let robot = sfu.start_robot(&room, "robot-1", 1).await;
    robot.stop().await;
}
