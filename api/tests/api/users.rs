//! Users as admins manage them: creating with a generated first password, searching and paging,
//! changing names and roles (not one's own role), resetting passwords (every session ends), and
//! disabling and enabling: who may, what it takes away at once (login, sessions, refresh, join
//! tokens at the media nodes), what enabling gives back, and the audit trail.

use bedside_api::UserRole;
use bedside_proto::node::{DenyScope, DenyTarget, NodeCommand, RevokeReason};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{bearer, expect, minutes, Backend, TestApp, PASSWORD};
use crate::revocation::{claims_of, next_deny};
use crate::robots_admin::patch;

backend_tests!(
    disabling_takes_everything_away,
    who_may_disable,
    admins_create_with_a_generated_password_and_edit,
    a_password_reset_ends_every_session,
    listing_searches_filters_and_pages,
);

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

async fn admins_create_with_a_generated_password_and_edit(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let other_admin = app.user(UserRole::Admin).await;

    // No password given: one is generated, shown once, and works.
    let body = json!({ "username": "Dr.New", "display_name": "Dr New", "role": "doctor" });
    let created = expect(
        StatusCode::CREATED,
        app.post("/api/users", &admin.token, body).await,
    );
    assert_eq!(created["username"], "dr.new");
    assert_eq!(created["role"], "doctor");
    let password = created["password"].as_str().expect("a generated password");
    assert_eq!(password.len(), 23, "{password}");
    let id = created["id"].as_str().unwrap().to_string();
    let login = expect(StatusCode::OK, app.login("dr.new", password).await);
    let token = login["access_token"].as_str().unwrap().to_string();
    // Given a password: none comes back.
    let body = json!({ "username": "st.given", "display_name": "S", "role": "student", "password": PASSWORD });
    let created = expect(
        StatusCode::CREATED,
        app.post("/api/users", &admin.token, body).await,
    );
    assert!(created.get("password").is_none(), "{created}");
    // And no password is ever listed.
    let list = expect(StatusCode::OK, app.get("/api/users", &admin.token).await);
    assert!(!list.to_string().contains(password));

    // Rename and change the role: their next request acts with the new role, and the media
    // nodes refuse the tokens they had.
    let (_, mut rx) = app.api.node_hub().subscribe().await.unwrap();
    let path = format!("/api/users/{id}");
    let changed = expect(
        StatusCode::OK,
        patch(
            &app,
            &path,
            &admin.token,
            json!({ "display_name": "  Dr Renamed ", "role": "student" }),
        )
        .await,
    );
    assert_eq!(
        (
            &changed["display_name"],
            &changed["role"],
            &changed["disabled"]
        ),
        (&json!("Dr Renamed"), &json!("student"), &json!(false))
    );
    let me = expect(StatusCode::OK, app.get("/api/me", &token).await);
    assert_eq!(
        (&me["role"], &me["display_name"]),
        (&json!("student"), &json!("Dr Renamed"))
    );
    let deny = next_deny(&mut rx).await;
    assert_eq!(deny.target, DenyTarget::Subject { sub: id.clone() });
    assert_eq!(deny.reason, RevokeReason::SessionEnded);
    // A name alone denies nothing.
    expect(
        StatusCode::OK,
        patch(&app, &path, &admin.token, json!({ "display_name": "Dr R" })).await,
    );
    assert!(
        matches!(rx.try_recv(), Err(_) | Ok(NodeCommand::Ping)),
        "renaming denies nothing"
    );

    // Bad changes.
    for (body, status, code) in [
        (
            json!({ "display_name": "" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({ "role": "superuser" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({ "password": "sneaky password" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({ "username": "renamed" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ] {
        let (got, answer) = patch(&app, &path, &admin.token, body.clone()).await;
        assert_eq!(
            (got, &answer["error"]),
            (status, &json!(code)),
            "{body}: {answer}"
        );
    }
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/users/{}", uuid::Uuid::new_v4()),
            Some(&bearer(&admin.token)),
            Some(&json!({ "display_name": "X" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nobody changes their own role; another admin may be demoted while one remains.
    let own = format!("/api/users/{}", admin.id);
    let (status, body) = app
        .call(
            Method::PATCH,
            &own,
            Some(&bearer(&admin.token)),
            Some(&json!({ "role": "doctor" })),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("cannot_demote_self"))
    );
    // Naming oneself is fine, and so is "changing" to the role one has.
    expect(
        StatusCode::OK,
        app.call(
            Method::PATCH,
            &own,
            Some(&bearer(&admin.token)),
            Some(&json!({ "display_name": "Boss", "role": "admin" })),
        )
        .await,
    );
    let theirs = format!("/api/users/{}", other_admin.id);
    expect(
        StatusCode::OK,
        app.call(
            Method::PATCH,
            &theirs,
            Some(&bearer(&admin.token)),
            Some(&json!({ "role": "doctor" })),
        )
        .await,
    );
    let (status, _) = app.get("/api/audit", &other_admin.token).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the demoted admin lost the console at once"
    );
    let (status, _) = app
        .call(
            Method::PATCH,
            &own,
            Some(&bearer(&other_admin.token)),
            Some(&json!({ "role": "doctor" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let updates = app.audit_kind(&admin.token, "user.updated").await;
    let role_change = updates
        .iter()
        .find(|e| e["detail"]["user"] == id.as_str() && e["detail"]["role_to"] == "student")
        .expect("the role change is audited");
    assert_eq!(role_change["actor"], admin.id.to_string());
    assert_eq!(role_change["detail"]["role_from"], "doctor");
    assert!(
        !updates
            .iter()
            .any(|e| e["detail"].to_string().contains("Renamed")),
        "no names in the log"
    );
}

async fn a_password_reset_ends_every_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    let second = expect(StatusCode::OK, app.login(&doctor.username, PASSWORD).await);
    let path = format!("/api/users/{}/password", doctor.id);

    for who in [&doctor, &app.user(UserRole::Student).await] {
        let (status, _) = app.post(&path, &who.token, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = app.get("/api/me", &doctor.token).await;
    assert_eq!(status, StatusCode::OK, "refused resets change nothing");

    let reset = expect(
        StatusCode::OK,
        app.post(&path, &admin.token, json!({})).await,
    );
    let password = reset["password"].as_str().unwrap();
    assert_eq!(reset["sessions_ended"], 2);
    for token in [
        doctor.token.as_str(),
        second["access_token"].as_str().unwrap(),
    ] {
        let (status, _) = app.get("/api/me", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(&json!({ "refresh_token": doctor.refresh })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.login(&doctor.username, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    app.clock.advance(chrono::Duration::seconds(5));
    expect(StatusCode::OK, app.login(&doctor.username, password).await);

    let (status, _) = app
        .post(
            &format!("/api/users/{}/password", uuid::Uuid::new_v4()),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resets = app.audit_kind(&admin.token, "user.password_reset").await;
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0]["actor"], admin.id.to_string());
    assert_eq!(resets[0]["detail"]["user"], doctor.id.to_string());
    assert!(
        !resets[0].to_string().contains(password),
        "the password is not logged"
    );
}

/// `GET /api/users` with its filters, and the total in `X-Total-Count`.
async fn users_page(app: &TestApp, token: &str, query: &str) -> (Vec<String>, i64) {
    let resp = app
        .http
        .get(app.url(&format!("/api/users?{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{query}");
    let total = resp.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    let names = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["display_name"].as_str().unwrap().to_string())
        .collect();
    (names, total)
}

async fn listing_searches_filters_and_pages(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.user(UserRole::Admin).await;
    let doctor = app.user(UserRole::Doctor).await;
    for (username, name, role) in [
        ("amara", "Dr Amara Okafor", UserRole::Doctor),
        ("bram", "Dr Bram de Vries", UserRole::Doctor),
        ("chen", "Chen Wei", UserRole::Student),
        ("dana", "Dana 100% Sure_", UserRole::Student),
        ("okafor2", "Eli Second", UserRole::Admin),
    ] {
        app.api
            .create_user(username, name, PASSWORD, role)
            .await
            .unwrap();
    }
    let chen = app
        .api
        .create_user("chen2", "Chen Disabled", PASSWORD, UserRole::Student)
        .await
        .unwrap();
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/users/{}/disable", chen.id),
            &admin.token,
            json!({}),
        )
        .await,
    );

    // Search: display name or username, any case; LIKE's wildcards are plain characters.
    let (names, total) = users_page(&app, &admin.token, "q=OKAFOR").await;
    assert_eq!(
        (names, total),
        (
            vec!["Dr Amara Okafor".to_string(), "Eli Second".to_string()],
            2
        )
    );
    let (names, _) = users_page(&app, &admin.token, "q=%25").await;
    assert_eq!(names, vec!["Dana 100% Sure_"]);
    let (names, _) = users_page(&app, &admin.token, "q=r_").await;
    assert!(names.is_empty(), "_ is not a wildcard: {names:?}");
    // Role and state.
    let (names, total) = users_page(&app, &admin.token, "role=student&q=chen").await;
    assert_eq!(
        (names, total),
        (vec!["Chen Disabled".to_string(), "Chen Wei".to_string()], 2)
    );
    let (names, _) = users_page(&app, &admin.token, "disabled=true").await;
    assert_eq!(names, vec!["Chen Disabled"]);
    let (names, _) = users_page(&app, &admin.token, "disabled=false&q=chen").await;
    assert_eq!(names, vec!["Chen Wei"]);
    // Pages by display name, with the total.
    let (all, total) = users_page(&app, &admin.token, "").await;
    assert_eq!(total, 8);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "by display name");
    let mut walked = Vec::new();
    for offset in (0..8).step_by(3) {
        let (page, total) =
            users_page(&app, &admin.token, &format!("limit=3&offset={offset}")).await;
        assert_eq!(total, 8);
        walked.extend(page);
    }
    assert_eq!(walked, all);

    // Doctors: no admins, no disabled users, and no filtering by state.
    let (names, total) = users_page(&app, &doctor.token, "q=okafor").await;
    assert_eq!((names, total), (vec!["Dr Amara Okafor".to_string()], 1));
    let (names, _) = users_page(&app, &doctor.token, "q=chen").await;
    assert_eq!(names, vec!["Chen Wei"]);
    let (status, _) = app.get("/api/users?disabled=true", &doctor.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        "limit=0",
        "limit=1001",
        &format!("q={}", "x".repeat(101)),
        "disabled=maybe",
        "offset=-1",
    ] {
        let (status, body) = app.get(&format!("/api/users?{bad}"), &admin.token).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{bad}: {status} {body}"
        );
    }
}
