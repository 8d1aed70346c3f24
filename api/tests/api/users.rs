//! Disabling and enabling users: who may, what it takes away at once (login, sessions, refresh,
//! join tokens at the media nodes), what enabling gives back, and the audit trail.

use bedside_api::UserRole;
use bedside_proto::node::{DenyScope, DenyTarget, NodeCommand, RevokeReason};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{expect, minutes, Backend, TestApp, PASSWORD};
use crate::revocation::{claims_of, next_deny};

backend_tests!(disabling_takes_everything_away, who_may_disable);

async fn disabling_takes_everything_away(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let colleague = app.user(UserRole::Doctor).await;
    let (robot, _) = app.robot().await;
    let booking = app
        .book_from_now(&doctor.token, robot, minutes(0), minutes(30))
        .await;
    let before = app.join_ok(&doctor.token, &booking).await;
    let (_, mut rx) = app.api.node_hub().subscribe().await.unwrap();

    let path = format!("/api/users/{}/disable", doctor.id);
    let user = expect(
        StatusCode::OK,
        app.post(&path, &admin.token, json!({})).await,
    );
    assert_eq!(user["id"], doctor.id.to_string());
    assert_eq!(user["disabled"], true);
    let now = app.clock.now();

    // The media nodes are told: every token of the subject issued until now.
    let deny = next_deny(&mut rx).await;
    assert_eq!(
        deny.target,
        DenyTarget::Subject {
            sub: doctor.id.to_string()
        }
    );
    assert_eq!(
        (deny.scope, deny.reason),
        (DenyScope::Access, RevokeReason::UserDisabled)
    );
    let cut = deny.issued_until.expect("cut in time") as i64;
    assert!((cut - now.timestamp()).abs() <= 1, "cut at the disable");
    // No token of theirs outlives the entry: grace (5 min) + longest slot (4 h).
    let longest = (now + minutes(5) + minutes(240)).timestamp();
    assert!((deny.until as i64 - longest).abs() <= 1, "{deny:?}");
    let verifier = app.api.verifier();
    let claims = verifier
        .verify(before["token"].as_str().unwrap(), &robot.to_string())
        .unwrap();
    assert!(deny.matches(&claims), "the token they had is refused");

    // The API: their session is over, their refresh token dead, and they cannot log in.
    let (status, _) = app.get("/api/me", &doctor.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(&json!({ "refresh_token": doctor.refresh })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.login(&doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    app.clock.advance(chrono::Duration::seconds(2));
    let (status, body) = app.login(&doctor.username, "wrong password").await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_credentials")),
        "a wrong password learns nothing about the account"
    );

    // Admins see the state; doctors choosing invitees no longer see them.
    let list = expect(
        StatusCode::OK,
        app.get("/api/users?role=doctor", &admin.token).await,
    );
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == doctor.id.to_string())
        .cloned()
        .expect("listed for admins");
    assert_eq!(row["disabled"], true);
    let list = expect(
        StatusCode::OK,
        app.get("/api/users", &colleague.token).await,
    );
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|u| u["id"] != doctor.id.to_string() && u.get("disabled").is_none()),
        "{list}"
    );

    // Enabled again: they log in, and tokens issued from now pass the old entry.
    app.clock.advance(chrono::Duration::seconds(10));
    let path = format!("/api/users/{}/enable", doctor.id);
    let user = expect(
        StatusCode::OK,
        app.post(&path, &admin.token, json!({})).await,
    );
    assert_eq!(user["disabled"], false);
    let body = expect(StatusCode::OK, app.login(&doctor.username, PASSWORD).await);
    let token = body["access_token"].as_str().unwrap();
    let after = app.join_ok(token, &booking).await;
    let claims = claims_of(after["token"].as_str().unwrap());
    assert!(
        !deny.matches(&claims),
        "a token issued after the cut passes"
    );
    assert!(
        matches!(rx.try_recv(), Err(_) | Ok(NodeCommand::Ping)),
        "enabling denies nothing"
    );

    let disabled = app.audit_kind(&admin.token, "user.disabled").await;
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["actor"], admin.id.to_string());
    assert_eq!(disabled[0]["detail"]["user"], doctor.id.to_string());
    assert_eq!(app.audit_kind(&admin.token, "user.enabled").await.len(), 1);
    let failed = app.audit_kind(&admin.token, "login.failed").await;
    assert!(
        failed.iter().any(|e| e["detail"]["reason"] == "disabled"),
        "{failed:?}"
    );
}

async fn who_may_disable(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let other_admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let student = app.user(UserRole::Student).await;

    let own = format!("/api/users/{}/disable", admin.id);
    let (status, body) = app.post(&own, &admin.token, json!({})).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("cannot_disable_self"))
    );
    let (status, _) = app.get("/api/me", &admin.token).await;
    assert_eq!(status, StatusCode::OK, "still in");

    let target = format!("/api/users/{}/disable", student.id);
    for (who, token) in [("doctor", &doctor.token), ("student", &student.token)] {
        let (status, _) = app.post(&target, token, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
    }
    let (status, _) = app
        .post(
            &format!("/api/users/{}/disable", uuid::Uuid::new_v4()),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // One admin may disable another; the other's session ends.
    let path = format!("/api/users/{}/disable", other_admin.id);
    expect(
        StatusCode::OK,
        app.post(&path, &admin.token, json!({})).await,
    );
    let (status, _) = app.get("/api/me", &other_admin.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Disabling twice is harmless.
    expect(
        StatusCode::OK,
        app.post(&path, &admin.token, json!({})).await,
    );
}
