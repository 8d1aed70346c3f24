//! Robots as admins manage them: editing a robot, and retiring one, which ends its publisher
//! and its bookings' sessions through the media nodes, cancels what is booked, refuses new
//! bookings and its credential, hides it from booking, and keeps it for the audit log.

use bedside_api::UserRole;
use bedside_proto::node::{DenyScope, DenyTarget, RevokeReason};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{bearer, expect, from_now, id_of, minutes, Backend, TestApp};
use crate::revocation::next_deny;

backend_tests!(admins_edit_robots, retiring_takes_a_robot_out_of_service);

pub async fn patch(
    app: &TestApp,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    app.call(Method::PATCH, path, Some(&bearer(token)), Some(&body))
        .await
}

async fn admins_edit_robots(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let path = format!("/api/robots/{robot}");

    let changed = expect(
        StatusCode::OK,
        patch(
            &app,
            &path,
            &admin.token,
            json!({ "name": " Rounds-2 ", "ward": "ICU" }),
        )
        .await,
    );
    assert_eq!(
        (&changed["name"], &changed["ward"], &changed["description"]),
        (&json!("Rounds-2"), &json!("ICU"), &json!("test robot")),
        "absent fields stay"
    );
    let changed = expect(
        StatusCode::OK,
        patch(&app, &path, &admin.token, json!({ "description": "" })).await,
    );
    assert_eq!(changed["description"], "");
    let listed = expect(StatusCode::OK, app.get("/api/robots", &doctor.token).await);
    assert_eq!(listed[0]["name"], "Rounds-2", "everyone sees the new name");

    for body in [
        json!({ "name": "" }),
        json!({ "ward": "w".repeat(101) }),
        json!({ "description": "d".repeat(1001) }),
        json!({ "credential": "bsc_mine" }),
        json!({ "name": 7 }),
    ] {
        let (status, answer) = patch(&app, &path, &admin.token, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
    }
    let (status, _) = patch(&app, &path, &doctor.token, json!({ "name": "Mine" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/robots/{}", uuid::Uuid::new_v4()),
            Some(&bearer(&admin.token)),
            Some(&json!({ "name": "X" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let updates = app.audit_kind(&admin.token, "robot.updated").await;
    assert_eq!(updates.len(), 2, "refused changes are not recorded");
    assert_eq!(updates[1]["detail"]["fields"], json!(["name", "ward"]));
    assert_eq!(updates[1]["room"], robot.to_string());
    assert_eq!(updates[1]["actor"], admin.id.to_string());
    assert_eq!(updates[0]["robot_name"], "Rounds-2");
}

async fn retiring_takes_a_robot_out_of_service(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let (robot, credential) = app.robot().await;
    let (other, _) = app.robot().await;
    let as_robot = format!("Robot {credential}");
    let publish = format!("/api/robots/{robot}/publish-token");
    expect(
        StatusCode::OK,
        app.call(Method::POST, &publish, Some(&as_robot), None)
            .await,
    );
    // On now (the doctor is in the room), later today, and one of another robot.
    let now = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    app.join_ok(&doctor.token, &now).await;
    let later = app
        .book_ok(
            &doctor.token,
            robot,
            from_now(minutes(120)),
            from_now(minutes(150)),
        )
        .await;
    let elsewhere = app
        .book_ok(
            &doctor.token,
            other,
            from_now(minutes(120)),
            from_now(minutes(150)),
        )
        .await;
    let (_, mut rx) = app.api.node_hub().subscribe().await.unwrap();

    let path = format!("/api/robots/{robot}/retire");
    let (status, _) = app.post(&path, &doctor.token, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let retired = expect(
        StatusCode::OK,
        app.post(&path, &admin.token, json!({})).await,
    );
    assert!(retired["robot"]["retired_at"].is_string(), "{retired}");
    let mut cancelled: Vec<String> = retired["cancelled_bookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    cancelled.sort();
    let mut expected = vec![id_of(&now).to_string(), id_of(&later).to_string()];
    expected.sort();
    assert_eq!(cancelled, expected);

    // The media nodes: the robot's publisher first, then each booking's participants.
    let deny = next_deny(&mut rx).await;
    assert_eq!(
        deny.target,
        DenyTarget::Subject {
            sub: robot.to_string()
        }
    );
    assert_eq!(
        (deny.scope, deny.reason),
        (DenyScope::Access, RevokeReason::SessionEnded)
    );
    assert!(deny.issued_until.is_some(), "cut at the retirement");
    let mut denied = Vec::new();
    for _ in 0..2 {
        let deny = next_deny(&mut rx).await;
        assert_eq!(deny.reason, RevokeReason::BookingCancelled);
        match deny.target {
            DenyTarget::Booking { booking } => denied.push(booking),
            other => panic!("unexpected deny {other:?}"),
        }
    }
    denied.sort();
    assert_eq!(denied, expected);

    // Its credential is dead, it cannot be booked, changed or rotated, and only admins see it.
    let (status, _) = app
        .call(Method::POST, &publish, Some(&as_robot), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .book(
            &doctor.token,
            robot,
            from_now(minutes(200)),
            from_now(minutes(230)),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("robot_retired"))
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/robots/{robot}"),
            Some(&bearer(&admin.token)),
            Some(&json!({ "name": "X" })),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("robot_retired"))
    );
    let (status, body) = app
        .post(
            &format!("/api/robots/{robot}/credential"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("robot_retired"))
    );
    let listed = expect(StatusCode::OK, app.get("/api/robots", &doctor.token).await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], other.to_string());
    let (status, _) = app
        .get("/api/robots?include_retired=true", &doctor.token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let all = expect(
        StatusCode::OK,
        app.get("/api/robots?include_retired=true", &admin.token)
            .await,
    );
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == robot.to_string() && r["retired_at"].is_string()));
    let listed = expect(StatusCode::OK, app.get("/api/robots", &admin.token).await);
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "hidden unless asked for"
    );

    // Its bookings are cancelled (joining says so); another robot's are untouched.
    let (status, body) = app.join(&doctor.token, &now).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("booking_cancelled"))
    );
    let kept = expect(
        StatusCode::OK,
        app.get(
            &format!("/api/bookings/{}", id_of(&elsewhere)),
            &doctor.token,
        )
        .await,
    );
    assert_eq!(kept["status"], "confirmed");

    // Again: nothing more happens.
    let again = expect(
        StatusCode::OK,
        app.post(&path, &admin.token, json!({})).await,
    );
    assert_eq!(again["cancelled_bookings"], json!([]));
    assert_eq!(again["robot"]["retired_at"], retired["robot"]["retired_at"]);

    // The audit log keeps it, by id and name.
    let entries = app.audit_kind(&admin.token, "robot.retired").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["room"], robot.to_string());
    assert_eq!(entries[0]["robot_name"], "Robo");
    assert_eq!(entries[0]["actor"], admin.id.to_string());
    let cancels = app.audit_kind(&admin.token, "booking.cancelled").await;
    assert_eq!(
        cancels
            .iter()
            .filter(|e| e["detail"]["reason"] == "robot_retired")
            .count(),
        2
    );
}
