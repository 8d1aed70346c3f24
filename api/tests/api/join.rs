//! Join tokens for people and publish tokens for robots, checked by decoding them with the
//! verifier the SFU would use.

use bedside_api::UserRole;
use bedside_proto::{Role, TokenVerifier};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{expect, from_now, id_of, minutes, parse_time, Backend, TestApp, PUBLIC_URL};

backend_tests!(join_tokens, publish_tokens_and_rotation);

async fn join(app: &TestApp, token: &str, booking: &Value) -> (StatusCode, Value) {
    let path = format!("/api/bookings/{}/join", id_of(booking));
    app.post(&path, token, json!({})).await
}

/// Book while the clock is shifted by `offset`, then put it back: the only way to have a
/// booking whose slot has started, since bookings in the past are refused.
async fn book_at(
    app: &TestApp,
    offset: chrono::Duration,
    token: &str,
    robot: uuid::Uuid,
    s: i64,
    e: i64,
) -> Value {
    app.clock.set_offset(offset);
    let (status, booking) = app
        .book(
            token,
            robot,
            from_now(offset + minutes(s)),
            from_now(offset + minutes(e)),
        )
        .await;
    app.clock.set_offset(chrono::Duration::zero());
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    booking
}

async fn join_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doctor = app.user(UserRole::Doctor).await;
    let consultant = app.user(UserRole::Doctor).await;
    let observer = app.user(UserRole::Student).await;
    let outsider = app.user(UserRole::Doctor).await;
    let admin = app.user(UserRole::Admin).await;
    let (robot, _) = app.robot().await;
    let (robot2, _) = app.robot().await;
    let verifier = app.api.verifier();
    let room = robot.to_string();

    let invite_both = |booking: Value| {
        let app = &app;
        let (c, o) = (consultant.id, observer.id);
        let token = doctor.token.clone();
        async move {
            let path = format!("/api/bookings/{}/invitations", id_of(&booking));
            assert_eq!(
                app.post(&path, &token, json!({ "user_id": c, "role": "consultant" }))
                    .await
                    .0,
                StatusCode::CREATED
            );
            assert_eq!(
                app.post(&path, &token, json!({ "user_id": o, "role": "observer" }))
                    .await
                    .0,
                StatusCode::CREATED
            );
        }
    };

    // In the grace period (starts in 3 min, grace 5 min): everyone joins, nobody controls.
    let soon = expect(
        StatusCode::CREATED,
        app.book(
            &doctor.token,
            robot,
            from_now(minutes(3)),
            from_now(minutes(63)),
        )
        .await,
    );
    invite_both(soon.clone()).await;
    let ends = parse_time(&soon["ends_at"]);
    for (who, token, role) in [
        ("doctor", &doctor.token, Role::Doctor),
        ("consultant", &consultant.token, Role::Doctor),
        ("observer", &observer.token, Role::Observer),
    ] {
        let (status, j) = join(&app, token, &soon).await;
        assert_eq!(status, StatusCode::OK, "{who}: {j}");
        assert_eq!(j["room"], room);
        assert_eq!(j["whep_url"], format!("{PUBLIC_URL}/whep/{room}"));
        assert_eq!(j["role"], role.as_str());
        assert_eq!(j["can_control"], false, "{who} in grace");
        assert_eq!(parse_time(&j["expires_at"]), ends);
        let claims = verifier
            .verify(j["token"].as_str().unwrap(), &room)
            .expect("valid token");
        assert_eq!(claims.role, role);
        assert!(!claims.can_control);
        assert_eq!(claims.exp, ends.timestamp() as u64, "exp is the slot's end");
        assert_eq!(
            claims.booking.as_deref(),
            Some(id_of(&soon).to_string().as_str())
        );
        assert!(claims.nbf <= chrono::Utc::now().timestamp() as u64 + 1);
    }
    let (status, _) = join(&app, &outsider.token, &soon).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not invited: cannot see it");
    let (status, body) = join(&app, &admin.token, &soon).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("forbidden")),
        "admins watch the audit log, not the patient"
    );

    // The slot has started (booked 10 min "ago" to start 5 min ago): the doctor controls.
    let started = book_at(&app, -minutes(10), &doctor.token, robot2, 5, 65).await;
    invite_both(started.clone()).await;
    let room2 = robot2.to_string();
    let (status, j) = join(&app, &doctor.token, &started).await;
    assert_eq!(status, StatusCode::OK, "{j}");
    assert_eq!(j["can_control"], true);
    let claims = verifier
        .verify(j["token"].as_str().unwrap(), &room2)
        .unwrap();
    assert!(claims.can_control);
    assert_eq!(claims.sub, doctor.id.to_string());
    assert_eq!(
        claims.exp,
        parse_time(&started["ends_at"]).timestamp() as u64
    );
    assert!(
        verifier
            .verify(j["token"].as_str().unwrap(), &room)
            .is_err(),
        "token is for one room"
    );
    for token in [&consultant.token, &observer.token] {
        let j = expect(StatusCode::OK, join(&app, token, &started).await);
        assert_eq!(
            j["can_control"], false,
            "only the booking's doctor controls"
        );
        let claims = verifier
            .verify(j["token"].as_str().unwrap(), &room2)
            .unwrap();
        assert!(!claims.can_control);
    }

    // Outside the window: too early, and over.
    let later = expect(
        StatusCode::CREATED,
        app.book(
            &doctor.token,
            robot,
            from_now(minutes(120)),
            from_now(minutes(180)),
        )
        .await,
    );
    let (status, body) = join(&app, &doctor.token, &later).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("outside_join_window")),
        "{body}"
    );
    let over = book_at(&app, -minutes(180), &doctor.token, robot, 5, 60).await;
    let (status, body) = join(&app, &doctor.token, &over).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("outside_join_window")),
        "{body}"
    );

    // Cancelled.
    app.cancel_ok(&doctor.token, &soon).await;
    let (status, body) = join(&app, &doctor.token, &soon).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("booking_cancelled"))
    );
}

async fn publish_tokens_and_rotation(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let body = json!({ "name": "R2", "ward": "Cardiology", "description": "3rd floor" });
    let (status, created) = app.post("/api/robots", &admin.token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let robot = created["robot"]["id"].as_str().unwrap().to_string();
    let credential = created["credential"].as_str().unwrap().to_string();
    assert_eq!(created["robot"]["ward"], "Cardiology");

    let publish = |cred: String| {
        let app = &app;
        let path = format!("/api/robots/{robot}/publish-token");
        async move {
            app.call(Method::POST, &path, Some(&format!("Robot {cred}")), None)
                .await
        }
    };
    let (status, p) = publish(credential.clone()).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["room"], robot);
    assert_eq!(
        p["robot_name"], created["robot"]["name"],
        "the robot's screen names it"
    );
    assert_eq!(p["whip_url"], format!("{PUBLIC_URL}/whip/{robot}"));
    // The SFU's view: the JWKS document, not the key pair.
    let jwks = expect(
        StatusCode::OK,
        app.call(Method::GET, "/.well-known/jwks.json", None, None)
            .await,
    );
    let sfu = TokenVerifier::from_jwks(&jwks).unwrap();
    let claims = sfu.verify(p["token"].as_str().unwrap(), &robot).unwrap();
    assert_eq!(
        (claims.role, claims.sub.as_str()),
        (Role::Robot, robot.as_str())
    );
    assert_eq!(claims.exp - claims.nbf, 12 * 3600);
    assert_eq!(parse_time(&p["expires_at"]).timestamp() as u64, claims.exp);

    assert_eq!(
        publish("bsc_wrong".into()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/robots/{robot}/publish-token"),
            Some(&format!("Bearer {}", admin.token)),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "users cannot publish as the robot"
    );
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/robots/{}/publish-token", uuid::Uuid::new_v4()),
            Some(&format!("Robot {credential}")),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a credential is for its own robot"
    );

    let (status, rotated) = app
        .post(
            &format!("/api/robots/{robot}/credential"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_credential = rotated["credential"].as_str().unwrap().to_string();
    assert_ne!(new_credential, credential);
    assert_eq!(
        publish(credential).await.0,
        StatusCode::UNAUTHORIZED,
        "old credential is dead"
    );
    assert_eq!(publish(new_credential).await.0, StatusCode::OK);
    let (status, _) = app
        .post(
            &format!("/api/robots/{}/credential", uuid::Uuid::new_v4()),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, robots) = app.get("/api/robots", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        robots,
        json!([{ "id": robot, "name": "R2", "ward": "Cardiology", "description": "3rd floor" }])
    );
}
